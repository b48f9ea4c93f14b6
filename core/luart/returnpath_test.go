package luart

import (
	"context"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/stats"
)

// TestRewriteReturnPathDomain: a tenant with return_path_domain sends
// every message from bounces@ that domain (the queue makes it a VERP
// address per recipient), keeps the original sender as the author of the
// bounces, and leaves From: and Sender: alone; a null sender stays null
// and a submitted reference header is dropped.
func TestRewriteReturnPathDomain(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{
		"rules/tenants/negozio.lua": "return { sender_domains = { \"example.com\" }, return_path_domain = \"Bounce.Example.com\" }\n",
	})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules})
	tn, ok := e.Lookup("negozio")
	if !ok || tn.ReturnPath.Domain != "bounce.example.com" {
		t.Fatalf("tenant negozio = %+v, want return-path domain bounce.example.com", tn)
	}
	for _, tc := range []struct {
		name, sender       string
		wantSender, author string
	}{
		{"a sender", "noreply@example.com", "bounces@bounce.example.com", "noreply@example.com"},
		{"the null sender", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadMessage(t, "transactional.eml", "negozio")
			m.Sender = tc.sender
			m.Header.Add("X-Corriere-Ref", "1.copied-from-another-message")
			if err := e.Rewrite(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if m.Sender != tc.wantSender || m.Author != tc.author {
				t.Errorf("sender, author = %q, %q; want %q, %q", m.Sender, m.Author, tc.wantSender, tc.author)
			}
			for k, v := range map[string]string{"From": "Example Shop <noreply@example.com>", "Sender": "", "X-Corriere-Ref": ""} {
				if got := m.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestTenantCounts: core.tenant_counts reads the node's per-tenant
// counters, here through a tenant's classify override that names its
// campaign after them.
func TestTenantCounts(t *testing.T) {
	t.Parallel()
	counters := stats.New(nil)
	for _, typ := range []event.Type{event.Delivered, event.Delivered, event.Complained} {
		counters.Emit(&event.Event{Type: typ, Tenant: "negozio", Time: time.Now()})
	}
	counters.Emit(&event.Event{Type: event.Complained, Tenant: "other", Time: time.Now()})
	scripts, rules := policyDirs(t, map[string]string{
		"rules/tenants/negozio.lua": "return {}\n",
		"scripts/tenants/negozio.lua": `local core = require "core"
function classify(msg)
  local c = core.tenant_counts(msg:tenant(), "1h")
  local r = defaults.classify(msg)
  r.campaign = c.complained .. "-of-" .. c.delivered
  return r
end
`,
	})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Counters: counters})
	c, err := e.Classify(context.Background(), loadMessage(t, "transactional.eml", "negozio"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Campaign != "1-of-2" {
		t.Errorf("campaign %q, want 1-of-2 (one complaint, two deliveries)", c.Campaign)
	}
}
