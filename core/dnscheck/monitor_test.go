package dnscheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"corriere/core/dnscheck"
	"corriere/core/event"
)

// TestMonitorReportsChanges checks a tenant twice: the first check emits
// nothing, the second one event per finding that changed status, appeared
// or went away, and the admin endpoints serve the last report.
func TestMonitorReportsChanges(t *testing.T) {
	f := newFixture(t)
	f.good(t)
	bus := &event.Bus{}
	var mu sync.Mutex
	var reasons []string
	bus.Subscribe(event.SinkFunc(func(e *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Type == event.DNSCheck && e.Tenant == "acme" {
			reasons = append(reasons, e.Reason)
		}
	}))
	m := dnscheck.NewMonitor(dnscheck.MonitorOptions{
		Checker: func() (*dnscheck.Checker, error) { return f.checker(), nil }, Events: bus,
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	h := http.NewServeMux()
	for pattern, handler := range m.AdminHandlers() {
		h.Handle(pattern, handler)
	}
	call := func(method, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code
	}
	if code := call(http.MethodGet, "/api/tenants/acme/dns"); code != http.StatusNotFound {
		t.Errorf("GET before any check: %d, want 404", code)
	}
	if err := m.CheckAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 0 {
		t.Errorf("the first check emitted %q", reasons)
	}
	if code := call(http.MethodGet, "/api/tenants/acme/dns"); code != http.StatusOK {
		t.Errorf("GET after a check: %d, want 200", code)
	}

	f.srv.Remove("corriere._domainkey.example.org")
	f.srv.MustAdd(`selector1._domainkey.example.org. 300 IN TXT "` + f.otherKey + `"`)
	if code := call(http.MethodPost, "/api/tenants/acme/dns"); code != http.StatusOK {
		t.Fatalf("POST: %d, want 200", code)
	}
	want := []string{
		"example.org dkim corriere._domainkey.example.org: ok -> error: ",
		"example.org dkim selector1._domainkey.example.org: absent -> warning: ",
		"example.org dmarc alignment: ok -> ok: ", // not a change: must not appear
	}
	for i, w := range want {
		found := slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, w) })
		if found != (i < 2) {
			t.Errorf("event %q emitted: %v, want %v (events %q)", w, found, i < 2, reasons)
		}
	}
	if got := counterValue(t, reg, "corriere_dns_check_changes_total", "dkim", "error"); got != 1 {
		t.Errorf("changes to dkim error counted %v, want 1", got)
	}
	if code := call(http.MethodPost, "/api/tenants/nobody/dns"); code != http.StatusNotFound {
		t.Errorf("POST for an unknown tenant: %d, want 404", code)
	}
}

// counterValue returns the value of the counter name{check, status}.
func counterValue(t *testing.T, reg *prometheus.Registry, name, check, status string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["check"] == check && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
