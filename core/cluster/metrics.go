package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cluster's Prometheus metrics.
type metrics struct {
	up        prometheus.Gauge
	live      prometheus.Gauge
	fallbacks prometheus.Counter
	calls     prometheus.Counter
}

// newMetrics makes the metrics, unregistered.
func newMetrics() metrics {
	m := metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "corriere_cluster_redis_up",
			Help: "1 while the node shares its limits through Redis, 0 while it keeps to its own share (fallback).",
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "corriere_cluster_live_nodes",
			Help: "Live nodes of the cluster when Redis last answered, this one included.",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corriere_cluster_fallbacks_total",
			Help: "Times the node lost Redis and fell back to its share of each limit.",
		}),
		calls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corriere_cluster_rate_calls_total",
			Help: "Round trips to Redis for cluster-wide rates (each reserves a batch of messages).",
		}),
	}
	return m
}

// register registers the metrics with reg.
func (m metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.up, m.live, m.fallbacks, m.calls} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// setUp records whether Redis answers.
func (m metrics) setUp(up bool) {
	if up {
		m.up.Set(1)
		return
	}
	m.up.Set(0)
	m.fallbacks.Inc()
}
