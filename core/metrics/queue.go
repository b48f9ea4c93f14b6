package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"corriere/core/message"
)

// Descriptions of the gauges read from the queue on each scrape.
var (
	descReady = prometheus.NewDesc("corriere_queue_ready_recipients",
		"Recipients due and waiting in a lane for a connection, by provider and class.", []string{"provider", "class"}, nil)
	descInFlight = prometheus.NewDesc("corriere_queue_inflight_recipients",
		"Recipients in an SMTP transaction right now, by provider.", []string{"provider"}, nil)
	descScheduled = prometheus.NewDesc("corriere_queue_scheduled_recipients",
		"Recipients waiting for their next attempt (a retry, or a message not due yet); their provider is known once they are due.", nil, nil)
	descPending = prometheus.NewDesc("corriere_queue_pending_recipients",
		"Every recipient the queue holds: scheduled, ready and in flight.", nil, nil)
	descSuspended = prometheus.NewDesc("corriere_lanes_suspended",
		"Lanes (source IP, provider) suspended right now, by provider.", []string{"provider"}, nil)
	descConnsOut = prometheus.NewDesc("corriere_smtp_connections_out_open",
		"Outbound SMTP connections open across all lanes.", nil, nil)
	descRemovalsWaiting = prometheus.NewDesc("corriere_operator_removals_waiting",
		"Recipients an operator bounced or deleted that are still to be settled: entries removed, DSNs and events written (paced while other mail flows).", nil, nil)
	descSessionsOut = prometheus.NewDesc("corriere_smtp_sessions_out_total",
		"Outbound SMTP connections opened since the node started.", nil, nil)
	descDialFailures = prometheus.NewDesc("corriere_smtp_dial_failures_total",
		"Attempts to open an outbound SMTP connection that failed (no MX answered, a refused connection, a refusing greeting).", nil, nil)
)

// queueCollector turns a queue.Depth into gauges when scraped.
type queueCollector struct {
	q         Queue
	providers *bounded
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descInFlight, descScheduled, descPending, descSuspended, descConnsOut, descSessionsOut, descDialFailures, descRemovalsWaiting} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Lanes of one provider (one per
// source IP) and providers past the cap add up into one series.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.q.Depth()
	type readyKey struct{ provider, class string }
	ready := map[readyKey]int{}
	inflight := map[string]int{}
	suspended := map[string]int{}
	for _, l := range d.Lanes {
		p := c.providers.label(l.Provider)
		for ci, n := range l.Ready {
			ready[readyKey{p, string(message.Classes[ci])}] += n
		}
		inflight[p] += l.InFlight
		// A provider with lanes reports 0 rather than nothing.
		suspended[p] += boolInt(l.Suspended)
	}
	for k, n := range ready {
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(n), k.provider, k.class)
	}
	for p, n := range inflight {
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(n), p)
	}
	for p, n := range suspended {
		ch <- prometheus.MustNewConstMetric(descSuspended, prometheus.GaugeValue, float64(n), p)
	}
	ch <- prometheus.MustNewConstMetric(descScheduled, prometheus.GaugeValue, float64(d.Scheduled))
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(d.Pending))
	ch <- prometheus.MustNewConstMetric(descConnsOut, prometheus.GaugeValue, float64(d.Connections))
	ch <- prometheus.MustNewConstMetric(descSessionsOut, prometheus.CounterValue, float64(d.SessionsOpened))
	ch <- prometheus.MustNewConstMetric(descDialFailures, prometheus.CounterValue, float64(d.DialFailures))
	ch <- prometheus.MustNewConstMetric(descRemovalsWaiting, prometheus.GaugeValue, float64(d.RemovalsWaiting))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
