package luart

import (
	"context"
	"strings"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/message"
	"corriere/core/policy"
)

// TestRouteTLS checks the tls field of route's result: each policy name is
// read, absent means auto, and a policy whose route returns anything else
// does not load, rather than weakening deliveries.
func TestRouteTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value   string // Lua expression; "" leaves the field out
		want    policy.TLSPolicy
		wantErr string
	}{
		{"", "", ""},
		{`"auto"`, "", ""},
		{`"opportunistic"`, policy.TLSOpportunistic, ""},
		{`"required"`, policy.TLSRequired, ""},
		{`"dane"`, policy.TLSDANE, ""},
		{`"mta-sts"`, policy.TLSMTASTS, ""},
		{`"strict"`, "", "want auto, opportunistic, required, dane or mta-sts"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			field := ""
			if tc.value != "" {
				field = ", tls = " + tc.value
			}
			scripts, rules := policyDirs(t, map[string]string{
				"scripts/route.lua": `function route(msg, rcpt) return { pool = "bulk"` + field + ` } end`,
			})
			if tc.wantErr != "" {
				_, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout})
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v; want an error saying %q", err, tc.wantErr)
				}
				return
			}
			e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules})
			m := loadMessage(t, "transactional.eml", "example")
			m.Class = message.Transactional
			rt, err := e.Route(context.Background(), delivery(m, "a@gmail.com", "gmail"))
			if err != nil || rt.TLS != tc.want {
				t.Fatalf("Route = %+v, %v; want TLS %q", rt, err, tc.want)
			}
		})
	}
}

// TestDryRunShowsMTASTS: with a resolver, the TLS line of a dry run says
// whether the recipient domain publishes MTA-STS.
func TestDryRunShowsMTASTS(t *testing.T) {
	t.Parallel()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	ds.MustAdd(
		"bank.example. 300 IN MX 10 mx.bank.example.",
		`_mta-sts.bank.example. 300 IN TXT "v=STSv1; id=2026"`,
		"plain.example. 300 IN MX 10 mx.plain.example.",
		"twice.example. 300 IN MX 10 mx.twice.example.",
		`_mta-sts.twice.example. 300 IN TXT "v=STSv1; id=a"`,
		`_mta-sts.twice.example. 300 IN TXT "v=STSv1; id=b"`,
	)
	res, err := dns.New(dns.Options{Servers: []string{ds.Addr}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := defaultEngine(t, Options{})
	for rcpt, want := range map[string]string{
		"a@bank.example":  "bank.example publishes an MTA-STS record (id 2026): the node fetches and applies its policy",
		"a@plain.example": "plain.example publishes no MTA-STS record",
		"a@twice.example": "twice.example publishes an invalid MTA-STS record",
	} {
		_, text := dryRunOnce(t, e, DryRunInput{Recipient: rcpt, Resolver: res})
		if !strings.Contains(text, "TLS        auto: DANE where") || !strings.Contains(text, want) {
			t.Errorf("%s: dry run lacks %q:\n%s", rcpt, want, text)
		}
	}
}

// TestRouteTLSFromRules: the shipped route hook takes the TLS policy from
// rules/tls.lua, the tenant's before the provider's before the class's,
// and a bad value in the file refuses the policy at load.
func TestRouteTLSFromRules(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{
		"rules/tls.lua": `return {
  default = "opportunistic",
  classes = { critical = "mta-sts", transactional = "required" },
  providers = { gmail = "dane" },
  tenants = { clinic = "required" },
}`,
	})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules})
	for _, tc := range []struct {
		tenant   string
		class    message.Class
		provider string
		want     policy.TLSPolicy
	}{
		{"clinic", message.Newsletter, "gmail", policy.TLSRequired},       // the tenant's
		{"example", message.Critical, "gmail", policy.TLSDANE},            // the provider's
		{"example", message.Critical, "yahoo", policy.TLSMTASTS},          // the class's
		{"example", message.Newsletter, "yahoo", policy.TLSOpportunistic}, // the default
	} {
		m := loadMessage(t, "transactional.eml", tc.tenant)
		m.Class = tc.class
		rt, err := e.Route(context.Background(), delivery(m, "a@example.org", tc.provider))
		if err != nil || rt.TLS != tc.want {
			t.Errorf("%s, %s, %s: Route = %+v, %v; want TLS %q", tc.tenant, tc.class, tc.provider, rt, err, tc.want)
		}
	}

	scripts, rules = policyDirs(t, map[string]string{"rules/tls.lua": `return { providers = { gmail = "strict" } }`})
	if _, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout}); err == nil ||
		!strings.Contains(err.Error(), "tls.lua") || !strings.Contains(err.Error(), "providers.gmail") {
		t.Fatalf("New with a bad rules/tls.lua: %v; want an error naming the file and the entry", err)
	}
}
