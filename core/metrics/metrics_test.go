package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"corriere/core/event"
	"corriere/core/metrics"
)

// listen serves m on a loopback port for the test's life.
func listen(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv, err := metrics.Listen("127.0.0.1:0", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv.Addr()
}

// TestLabelCaps emits events for more tenants and providers than the caps
// allow, and with classes outside the four: the scrape has the first
// tenants and providers by name, the rest under "other", and empty values
// as "none".
func TestLabelCaps(t *testing.T) {
	m := metrics.New(metrics.Options{MaxTenants: 2, MaxProviders: 3})
	for i := range 10 {
		m.Emit(&event.Event{Type: event.Delivered, Tenant: fmt.Sprintf("t%d", i), Provider: fmt.Sprintf("p%d", i), Class: "transactional"})
	}
	m.Emit(&event.Event{Type: event.Deferred, Tenant: "t0", Provider: "p0", Class: "made-up"})
	m.Emit(&event.Event{Type: event.Received, Recipients: 2})
	m.Emit(&event.Event{Type: event.Suspended, Provider: "p1", Source: "192.0.2.1"})
	m.Emit(&event.Event{Type: event.Suspended, Provider: "p9"})
	families := scrape(t, listen(t, m))

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "delivered", "tenant": "t0", "provider": "p0"}, 1},
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "delivered", "tenant": "t1", "provider": "p1"}, 1},
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "delivered", "tenant": "other", "provider": "p2"}, 1},
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "delivered", "tenant": "other", "provider": "other"}, 7},
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "deferred", "class": "other"}, 1},
		{"corriere_messages_received_total", map[string]string{"tenant": "none", "class": "none"}, 1},
		{"corriere_recipients_received_total", map[string]string{"tenant": "none", "class": "none"}, 2},
		{"corriere_suspensions_total", map[string]string{"provider": "p1", "scope": "lane"}, 1},
		{"corriere_suspensions_total", map[string]string{"provider": "other", "scope": "provider"}, 1},
	}
	for _, tt := range tests {
		if got := sum(families, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	values := map[string]map[string]bool{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "corriere_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if values[l.GetName()] == nil {
					values[l.GetName()] = map[string]bool{}
				}
				values[l.GetName()][l.GetValue()] = true
			}
		}
	}
	// The caps plus "other" and "none".
	if len(values["tenant"]) > 2+2 || len(values["provider"]) > 3+2 {
		t.Errorf("label values over the caps: tenants %v, providers %v", values["tenant"], values["provider"])
	}
}

// TestReadiness: /readyz answers 503 with the reason until the node says
// it is ready, 200 then, and 503 again once it stops; /healthz answers 200
// throughout.
func TestReadiness(t *testing.T) {
	m := metrics.New(metrics.Options{})
	addr := listen(t, m)
	steps := []struct {
		name string
		set  func()
		code int
		says string
	}{
		{"new", func() {}, http.StatusServiceUnavailable, "not ready: starting"},
		{"started", func() { m.SetReadiness(nil) }, http.StatusOK, "ready"},
		{"stopping", func() { m.SetReadiness(errors.New("shutting down")) }, http.StatusServiceUnavailable, "not ready: shutting down"},
	}
	for _, s := range steps {
		s.set()
		if code, body := get(t, "http://"+addr+"/readyz"); code != s.code || strings.TrimSpace(string(body)) != s.says {
			t.Errorf("%s: /readyz = %d %q, want %d %q", s.name, code, body, s.code, s.says)
		}
		if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Errorf("%s: /healthz = %d, want 200", s.name, code)
		}
	}
}
