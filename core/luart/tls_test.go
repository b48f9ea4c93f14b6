package luart

import (
	"context"
	"strings"
	"testing"

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
		{`"auto"`, policy.TLSAuto, ""},
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
