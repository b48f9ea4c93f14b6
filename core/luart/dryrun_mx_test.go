package luart

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/policy"
)

// dryRunOnce takes testdata's transactional message to rcpt through e and
// returns the result and its text.
func dryRunOnce(t *testing.T, e *Engine, in DryRunInput) (*DryRun, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, "messages", "transactional.eml"))
	if err != nil {
		t.Fatal(err)
	}
	in.Name, in.Message, in.Tenant = "transactional.eml", raw, "example"
	d, err := e.DryRun(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := d.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	return d, out.String()
}

// TestDryRunLooksUpTheMX: the dry run finds the MX host as the node does,
// so a Google-hosted domain is provider gmail, and a failed lookup is said
// plainly, with what the node would do and what the dry run assumes.
func TestDryRunLooksUpTheMX(t *testing.T) {
	t.Parallel()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	ds.MustAdd(
		"gmail.com. 300 IN MX 5 gmail-smtp-in.l.google.com.",
		"gmail.com. 300 IN MX 10 alt1.gmail-smtp-in.l.google.com.",
		"shop.example. 300 IN MX 10 aspmx.l.google.com.",
		"self.example. 300 IN A 192.0.2.80",
		"broken.example. 300 IN MX 10 mx.broken.example.",
	)
	ds.SetServFail("broken.example.", true)
	res, err := dns.New(dns.Options{Servers: []string{ds.Addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := defaultEngine(t, Options{})
	tests := []struct {
		rcpt, mxHost, provider string
		lookedUp, bounce       bool
		failed                 bool
		text                   []string
	}{
		{"giulia@gmail.com", "gmail-smtp-in.l.google.com", "gmail", true, false, false,
			[]string{"via MX gmail-smtp-in.l.google.com (looked up): provider gmail", "Shape      gmail from"}},
		{"orders@shop.example", "aspmx.l.google.com", "gmail", true, false, false,
			[]string{"via MX aspmx.l.google.com (looked up): provider gmail"}},
		{"me@self.example", "self.example", "self.example", true, false, false,
			[]string{"via MX self.example (looked up: no MX records, the domain itself takes mail)"}},
		{"x@broken.example", "broken.example", "broken.example", false, false, true,
			[]string{"MX         lookup FAILED: ", "SERVFAIL", "would not deliver now, and would try the lookup again later",
				"via MX broken.example (assumed: the lookup failed): provider broken.example"}},
		{"x@nowhere.example", "nowhere.example", "nowhere.example", false, true, true,
			[]string{"MX         lookup FAILED: ", "the node would bounce this recipient"}},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			d, text := dryRunOnce(t, e, DryRunInput{Recipient: tt.rcpt, Resolver: res})
			if d.MXHost != tt.mxHost || d.Provider != tt.provider || d.MXLookedUp != tt.lookedUp ||
				(d.MXError != "") != tt.failed || d.MXBounce != tt.bounce {
				t.Errorf("MX %q provider %q looked up %v error %q bounce %v; want %q %q %v failed %v bounce %v",
					d.MXHost, d.Provider, d.MXLookedUp, d.MXError, d.MXBounce, tt.mxHost, tt.provider, tt.lookedUp, tt.failed, tt.bounce)
			}
			for _, want := range tt.text {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// TestDryRunShowsWarmupAndEnforcedBurst: the source's warm-up day and cap
// come from rules/pools.lua, and the burst shown is the one the node's
// limiter lets through, which a lower rate bounds.
func TestDryRunShowsWarmupAndEnforcedBurst(t *testing.T) {
	t.Parallel()
	pools, err := os.ReadFile(filepath.Join(repoRoot, "rules", "pools.lua"))
	if err != nil {
		t.Fatal(err)
	}
	warm := strings.Replace(string(pools), "  warmup = {\n", `  warmup = {
    ["192.0.2.12"] = { start = "2025-06-01", daily = { 50, 100, 200, 400 }, per_minute = 30 },
    ["192.0.2.13"] = { start = "2025-05-01", daily = { 50, 100 } },
`, 1)
	if warm == string(pools) {
		t.Fatal("rules/pools.lua has no warmup table to extend")
	}
	scripts, rules := policyDirs(t, map[string]string{"rules/pools.lua": warm})
	now := time.Date(2025, 6, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		source string
		warmup *WarmupDay
		burst  Burst
		text   []string
	}{
		{"192.0.2.12", &WarmupDay{Start: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), Days: 4, Day: 3, Cap: 200, Warming: true},
			Burst{N: 30, Then: 2 * time.Second},
			[]string{"30/minute, burst 100", "burst enforced: 30 back to back (burst 100 asked; the rates allow 30), then the next after 2s",
				"Warm-up    192.0.2.12 is on day 3 of 4 (from 2025-06-01): at most 200 messages to gmail today"}},
		{"192.0.2.13", &WarmupDay{Start: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), Days: 2, Day: 34},
			Burst{N: 100, Then: 50 * time.Millisecond},
			[]string{"burst enforced: 100 back to back, then the next after 50ms",
				"Warm-up    192.0.2.13 finished its 2-day warm-up (from 2025-05-01): no cap"}},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Now: func() time.Time { return now },
				Sources: []policy.Source{{IP: tt.source}}})
			d, text := dryRunOnce(t, e, DryRunInput{Recipient: "giulia@gmail.com", MXHost: "gmail-smtp-in.l.google.com"})
			if d.Route.Source != tt.source {
				t.Fatalf("routed from %q, want %s", d.Route.Source, tt.source)
			}
			if d.Warmup == nil || *d.Warmup != *tt.warmup {
				t.Errorf("warm-up %+v, want %+v", d.Warmup, tt.warmup)
			}
			if d.Burst != tt.burst {
				t.Errorf("burst %+v, want %+v", d.Burst, tt.burst)
			}
			for _, want := range tt.text {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
		})
	}
}
