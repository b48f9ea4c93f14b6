package dnscheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"corriere/core/event"
)

// MonitorOptions configure a Monitor.
type MonitorOptions struct {
	// Checker returns a Checker with the platform's current settings; it
	// is called before every pass, so that a policy reload (new tenants,
	// keys, IPs) is seen by the next check. Required.
	Checker func() (*Checker, error)
	// Interval is the time between two checks of every tenant. The
	// default value is 24h.
	Interval time.Duration
	// FirstDelay is the time from Run to the first check, so that a node
	// that restarts often does not check every time. The default value is
	// 10 minutes, or Interval when that is shorter.
	FirstDelay time.Duration
	// Events receives a DNSCheck event for every finding whose status
	// changed. The default value is none.
	Events *event.Bus
	// Logger logs each pass. The default value is slog.Default().
	Logger *slog.Logger
}

// Monitor re-checks the sender domains of every tenant on a schedule and
// keeps the last Report of each. It is safe for concurrent use.
type Monitor struct {
	opts MonitorOptions

	mu      sync.Mutex
	reports map[string]*Report

	changes  *prometheus.CounterVec
	findings *prometheus.GaugeVec
}

// NewMonitor returns a Monitor; Run starts its schedule.
func NewMonitor(opts MonitorOptions) *Monitor {
	if opts.Interval <= 0 {
		opts.Interval = 24 * time.Hour
	}
	if opts.FirstDelay <= 0 {
		opts.FirstDelay = min(10*time.Minute, opts.Interval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Monitor{
		opts:    opts,
		reports: map[string]*Report{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corriere_dns_check_changes_total",
			Help: "Findings of the tenants' DNS checks whose status changed, by check and new status (absent when the finding went away).",
		}, []string{"check", "status"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "corriere_dns_check_findings",
			Help: "Findings of the last DNS check of every tenant, by status.",
		}, []string{"status"}),
	}
}

// Collectors returns the Monitor's metrics, for the node's registry.
func (m *Monitor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.changes, m.findings}
}

// Run checks every tenant after FirstDelay and then every Interval, until
// ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTimer(m.opts.FirstDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.CheckAll(ctx); err != nil {
			m.opts.Logger.Error("dns check: not run", "err", err)
		}
		t.Reset(m.opts.Interval)
	}
}

// CheckAll checks every tenant that has sender domains, or a bounce or
// return-path domain. A
// tenant that cannot be checked (a sender domain that is not a domain name)
// is logged and skipped.
func (m *Monitor) CheckAll(ctx context.Context) error {
	c, err := m.opts.Checker()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(c.Platform.Tenants))
	for name, t := range c.Platform.Tenants {
		if len(t.SenderDomains) > 0 || t.EnvelopeDomain("") != "" || t.ReturnPathDomain != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := m.check(ctx, c, name); err != nil {
			m.opts.Logger.Warn("dns check: tenant not checked", "tenant", name, "err", err)
		}
	}
	return nil
}

// CheckTenant checks one tenant's sender domains now and returns the
// report.
func (m *Monitor) CheckTenant(ctx context.Context, tenant string) (*Report, error) {
	c, err := m.opts.Checker()
	if err != nil {
		return nil, err
	}
	return m.check(ctx, c, tenant)
}

func (m *Monitor) check(ctx context.Context, c *Checker, tenant string) (*Report, error) {
	t, ok := c.Platform.Tenants[tenant]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
	}
	r, err := c.Check(ctx, t.SenderDomains, tenant)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	prev := m.reports[tenant]
	m.reports[tenant] = r
	m.updateGauge()
	m.mu.Unlock()
	m.opts.Logger.Info("dns check", "tenant", tenant, "domains", len(t.SenderDomains),
		"errors", r.Count(Error), "warnings", r.Count(Warning))
	if prev != nil {
		m.emitChanges(tenant, prev, r)
	}
	return r, nil
}

// updateGauge recounts the findings of every last report; m.mu is held.
func (m *Monitor) updateGauge() {
	counts := map[Status]int{OK: 0, Warning: 0, Error: 0}
	for _, r := range m.reports {
		for _, f := range r.Findings {
			counts[f.Status]++
		}
	}
	for s, n := range counts {
		m.findings.WithLabelValues(string(s)).Set(float64(n))
	}
}

// emitChanges emits an event and counts a change for every finding whose
// status differs between two reports of a tenant, and for every finding
// that appeared or went away.
func (m *Monitor) emitChanges(tenant string, prev, cur *Report) {
	before := map[string]Finding{}
	for _, f := range prev.Findings {
		before[f.Key()] = f
	}
	changed := func(f Finding, from, to string) {
		m.changes.WithLabelValues(string(f.Check), to).Inc()
		m.opts.Events.Emit(&event.Event{Type: event.DNSCheck, Tenant: tenant,
			Reason: fmt.Sprintf("%s %s %s: %s -> %s: %s", f.Domain, f.Check, f.Subject, from, to, f.Meaning)})
	}
	for _, f := range cur.Findings {
		old, seen := before[f.Key()]
		delete(before, f.Key())
		switch {
		case !seen:
			changed(f, "absent", string(f.Status))
		case old.Status != f.Status:
			changed(f, string(old.Status), string(f.Status))
		}
	}
	for _, f := range prev.Findings {
		if _, gone := before[f.Key()]; gone {
			changed(f, string(f.Status), "absent")
		}
	}
}

// Report returns the last report of tenant.
func (m *Monitor) Report(tenant string) (*Report, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.reports[tenant]
	return r, ok
}

// AdminHandlers returns the admin API's endpoints: GET
// /api/tenants/{tenant}/dns answers the tenant's last report (404 before
// the first check), POST checks the tenant now and answers the new one.
func (m *Monitor) AdminHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /api/tenants/{tenant}/dns": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tenant := r.PathValue("tenant")
			rep, ok := m.Report(tenant)
			if !ok {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "no DNS check of tenant " + tenant + " yet; POST to this address checks now"})
				return
			}
			writeJSON(w, http.StatusOK, rep)
		}),
		"POST /api/tenants/{tenant}/dns": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rep, err := m.CheckTenant(r.Context(), r.PathValue("tenant"))
			switch {
			case errors.Is(err, ErrUnknownTenant):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			case err != nil:
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			default:
				writeJSON(w, http.StatusOK, rep)
			}
		}),
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away
}
