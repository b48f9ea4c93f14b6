package outbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPending   = prometheus.NewDesc("corriere_outbox_pending_events", "Events waiting for their endpoints, by outbox and tenant.", []string{"outbox", "tenant"}, nil)
	descLag       = prometheus.NewDesc("corriere_outbox_lag_seconds", "Age of the oldest event waiting, the worst of the tenant's endpoints.", []string{"outbox", "tenant"}, nil)
	descDelivered = prometheus.NewDesc("corriere_outbox_delivered_events_total", "Events their endpoints took, since start.", []string{"outbox", "tenant"}, nil)
	descFailures  = prometheus.NewDesc("corriere_outbox_failed_requests_total", "Requests that failed (error, timeout, non-2xx answer), since start.", []string{"outbox", "tenant"}, nil)
	descDead      = prometheus.NewDesc("corriere_outbox_dead_events_total", "Events moved to the dead-letter list, since start.", []string{"outbox", "tenant"}, nil)
)

// Describe implements prometheus.Collector.
func (o *Outbox) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descLag, descDelivered, descFailures, descDead} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the workers' counters summed
// per tenant ("none" for the operator's sink), the lag the worst of them.
func (o *Outbox) Collect(ch chan<- prometheus.Metric) {
	type sums struct {
		pending, delivered, failures, dead int64
		lag                                float64
	}
	now := o.opts.Now()
	by := map[string]*sums{}
	o.mu.Lock()
	for _, w := range o.workers {
		t := w.ep.Tenant
		if t == "" {
			t = "none"
		}
		s := by[t]
		if s == nil {
			s = &sums{}
			by[t] = s
		}
		s.pending += w.stats.pending.Load()
		s.delivered += w.stats.delivered.Load()
		s.failures += w.stats.failures.Load()
		s.dead += w.stats.dead.Load()
		s.lag = max(s.lag, w.lag(now).Seconds())
	}
	o.mu.Unlock()
	for t, s := range by {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.pending), o.opts.Name, t)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, s.lag, o.opts.Name, t)
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(s.delivered), o.opts.Name, t)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.failures), o.opts.Name, t)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.dead), o.opts.Name, t)
	}
}

var _ prometheus.Collector = (*Outbox)(nil)
