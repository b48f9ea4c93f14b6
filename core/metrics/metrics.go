package metrics

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/queue"
)

// Queue is what the metrics read of the queue when scraped.
type Queue interface {
	Depth() queue.Depth
}

// EventLog is what the metrics read of the event log when scraped.
type EventLog interface {
	Dropped() int64
}

// Options configure New.
type Options struct {
	// Queue is read on every scrape for the queue gauges; nil leaves them
	// out.
	Queue Queue
	// EventLog is read on every scrape for the events it could not write;
	// nil leaves the counter out.
	EventLog EventLog
	// MaxTenants caps the distinct values of the tenant label; tenants
	// seen after the cap is reached are counted as "other". The default
	// value is 100.
	MaxTenants int
	// MaxProviders caps the distinct values of the provider label, like
	// MaxTenants. The default value is 50.
	MaxProviders int
}

// EnsureDefaults fills in the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.MaxTenants <= 0 {
		o.MaxTenants = 100
	}
	if o.MaxProviders <= 0 {
		o.MaxProviders = 50
	}
}

// Label values that stand for more than one value.
const (
	// Other is the label value of tenants and providers past their cap,
	// and of unknown classes.
	Other = "other"
	// None is the label value of an empty tenant, class or provider.
	None = "none"
)

// Metrics holds a node's Prometheus metrics. Create it with New; it is
// safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	tenants   *bounded
	providers *bounded
	ready     atomic.Pointer[error]

	received      *prometheus.CounterVec
	receivedRcpts *prometheus.CounterVec
	outcomes      *prometheus.CounterVec
	complaints    *prometheus.CounterVec
	suspensions   *prometheus.CounterVec
	hooks         *prometheus.HistogramVec
	commits       *prometheus.HistogramVec
	sessionsIn    prometheus.Counter
	sessionsOpen  prometheus.Gauge
}

var _ event.Sink = (*Metrics)(nil)

// errStarting is the readiness of a node that has not said it is ready.
var errStarting = errors.New("starting")

// New returns the metrics, registered with a registry of their own along
// with the Go runtime's and the process's. The node is not ready until
// SetReadiness(nil).
func New(opts Options) *Metrics {
	opts.EnsureDefaults()
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		tenants:   newBounded(opts.MaxTenants),
		providers: newBounded(opts.MaxProviders),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_messages_received_total",
			Help: "Messages accepted and spooled, by tenant and class.",
		}, []string{"tenant", "class"}),
		receivedRcpts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_recipients_received_total",
			Help: "Recipients of the messages accepted, by tenant and class.",
		}, []string{"tenant", "class"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_recipient_outcomes_total",
			Help: "Outcomes per recipient (delivered, deferred, bounced, expired, and deleted by an operator), by tenant, class and provider.",
		}, []string{"outcome", "tenant", "class", "provider"}),
		complaints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_complaints_total",
			Help: "Feedback-loop complaints received, by tenant, class and provider.",
		}, []string{"tenant", "class", "provider"}),
		suspensions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_suspensions_total",
			Help: "Suspensions started or extended, by provider and scope (lane: one source IP towards the provider; provider: all of them).",
		}, []string{"provider", "scope"}),
		hooks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corriere_hook_duration_seconds",
			Help:    "Duration of Lua policy hook calls, by hook.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"hook"}),
		commits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corriere_spool_commit_duration_seconds",
			Help:    "Duration of spool commits; sync=\"true\" waited for the disk (messages received, outcomes with a DSN).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"sync"}),
		sessionsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "corriere_smtp_sessions_in_total",
			Help: "Inbound SMTP connections accepted on the submission listener.",
		}),
		sessionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "corriere_smtp_sessions_in_open",
			Help: "Inbound SMTP connections open on the submission listener.",
		}),
	}
	m.SetReadiness(errStarting)
	m.reg.MustRegister(m.received, m.receivedRcpts, m.outcomes, m.complaints, m.suspensions,
		m.hooks, m.commits, m.sessionsIn, m.sessionsOpen,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.Queue != nil {
		m.reg.MustRegister(&queueCollector{q: opts.Queue, providers: m.providers})
	}
	if opts.EventLog != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "corriere_event_log_dropped_total",
			Help: "Events the event log could not write (a full disk) and dropped.",
		}, func() float64 { return float64(opts.EventLog.Dropped()) }))
	}
	return m
}

// Registry returns the registry the metrics are registered with, where
// other subsystems may register theirs.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Emit counts the mail events and the suspensions.
func (m *Metrics) Emit(e *event.Event) {
	switch e.Type {
	case event.Received:
		tenant, class := m.tenants.label(e.Tenant), classLabel(e.Class)
		m.received.WithLabelValues(tenant, class).Inc()
		m.receivedRcpts.WithLabelValues(tenant, class).Add(float64(e.Recipients))
	case event.Delivered, event.Deferred, event.Bounced, event.Expired, event.Deleted:
		m.outcomes.WithLabelValues(string(e.Type), m.tenants.label(e.Tenant), classLabel(e.Class), m.providers.label(e.Provider)).Inc()
	case event.Complained:
		m.complaints.WithLabelValues(m.tenants.label(e.Tenant), classLabel(e.Class), m.providers.label(e.Provider)).Inc()
	case event.Suspended:
		scope := "provider"
		if e.Source != "" {
			scope = "lane"
		}
		m.suspensions.WithLabelValues(m.providers.label(e.Provider), scope).Inc()
	}
}

// ObserveHook records the duration of one call of a policy hook; it is a
// luart.HookObserver. Hook names are luart's closed set.
func (m *Metrics) ObserveHook(hook string, d time.Duration) {
	m.hooks.WithLabelValues(hook).Observe(d.Seconds())
}

// ObserveCommit records the duration of one spool commit; it is a
// spool.CommitObserver.
func (m *Metrics) ObserveCommit(sync bool, d time.Duration) {
	m.commits.WithLabelValues(strconv.FormatBool(sync)).Observe(d.Seconds())
}

// SetReadiness sets what /readyz answers: nil is ready, an error says why
// not.
func (m *Metrics) SetReadiness(err error) { m.ready.Store(&err) }

// Readiness returns nil when the node is ready, or why it is not.
func (m *Metrics) Readiness() error { return *m.ready.Load() }

// classLabel maps a class to its label value: one of message.Classes,
// None or Other.
func classLabel(c string) string {
	if c == "" {
		return None
	}
	if _, ok := message.ParseClass(c); ok {
		return c
	}
	return Other
}

// bounded hands out label values for an open set (tenants, providers): the
// first max distinct values keep their own, the rest become Other.
type bounded struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBounded(max int) *bounded {
	return &bounded{max: max, seen: make(map[string]struct{}, max)}
}

// label returns v, None for an empty v, or Other once the cap is reached.
func (b *bounded) label(v string) string {
	if v == "" {
		return None
	}
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[v] = struct{}{}
	return v
}
