package statuspage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/reputation"
	"corriere/core/spool"
)

type fixedQueue queue.Status

func (q fixedQueue) Status() queue.Status { return queue.Status(q) }

type fixedPolicy luart.Status

func (p fixedPolicy) Status() luart.Status { return luart.Status(p) }

// TestPageShowsEverySection renders the page over a tracker fed with
// events and a queue with a suspended, warming lane, and checks each
// section shows its facts, the charts are inline SVG, nothing is loaded
// from elsewhere, and what came from the outside is escaped.
func TestPageShowsEverySection(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	rep, err := reputation.Open(sp, reputation.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	for i, typ := range []event.Type{event.Delivered, event.Delivered, event.Deferred, event.Bounced} {
		rep.Emit(&event.Event{Time: now.Add(-time.Duration(i) * time.Hour), Type: typ, Category: event.CategoryUserUnknown, Source: "192.0.2.1", Provider: "gmail",
			MX: "mx", Tenant: "shop", Class: "newsletter"})
	}
	rep.Emit(&event.Event{Time: now, Type: event.Complained, Provider: "gmail", Tenant: "shop", Class: "newsletter"})
	rep.Emit(&event.Event{Time: now, Type: event.Suspended, Provider: "gmail", Source: "192.0.2.1", Until: now.Add(10 * time.Minute),
		Reason: "421 4.7.28 <script>too fast</script>"})
	q := fixedQueue{Pending: 42, Connections: 3, MaxConnections: 1000, Lanes: []queue.LaneStatus{{
		Source: "192.0.2.1", Provider: "gmail", Queued: map[message.Class]int{message.Newsletter: 40, message.Critical: 2},
		InFlight: 1, Connections: 1, Limits: policy.Limits{MaxConnections: 3, PerMinute: 300}, RateFactor: 0.5,
		SuspendedUntil: now.Add(10 * time.Minute), Warmup: &queue.WarmupStatus{Day: 2, Cap: 100, Sent: 25},
	}}}
	pol := fixedPolicy{Generation: 7, LoadedAt: now.Add(-time.Minute), LastError: "rules/providers.lua:12: unexpected symbol", LastErrorAt: now, ReloadErrors: 1}
	h, err := New(Options{Reputation: rep, Queue: q, Policy: pol, Hostname: "mta.example", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		return string(b)
	}
	page := get("/")
	for _, want := range []string{
		"mta.example", "generation 7", "rules/providers.lua:12: unexpected symbol", // policy
		`<td class="n" id="pending">42</td>`,                            // overview
		"<td>gmail</td><td class=\"n\">2</td>",                          // queue by provider: critical first
		"suspended", "421 4.7.28 &lt;script&gt;too fast&lt;/script&gt;", // lanes and suspensions, escaped
		"300/min", "50.0%", "0.1/min", // limits, rate factor, rate of the last 10 minutes
		"warm-up day 2", "<title>25 of 100</title>", // warm-up
		`<svg class="chart"`, "last 24 hours: 2 delivered, 1 deferred, 1 bounced", // charts
		"userunknown",                         // the tenant's main bounce
		`data-refresh="2000"`, "/status/live", // live updates
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, never := range []string{"<script>too fast", "http://", "https://", "src="} {
		if strings.Contains(page, never) {
			t.Errorf("page contains %q", never)
		}
	}
	live := get("/status/live")
	if !strings.Contains(live, `data-generated="12:00:00"`) || strings.Contains(live, "<html") {
		t.Errorf("live part: %s", live)
	}
}
