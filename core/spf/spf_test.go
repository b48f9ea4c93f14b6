package spf

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"corriere/core/dns/authserver"
)

// TestCheckReportsDecision checks what an Outcome says beyond the result:
// the trail through include and redirect, the deciding mechanism and the
// lookups used, and a temperror when the server never answers.
func TestCheckReportsDecision(t *testing.T) {
	srv, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.MustAdd(
		`example.org. 300 IN TXT "v=spf1 include:_spf.example.net redirect=rest.example.org"`,
		`_spf.example.net. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`rest.example.org. 300 IN TXT "v=spf1 a:mail.example.org ~all"`,
		`mail.example.org. 300 IN A 198.51.100.7`,
		`slow.example.org. 300 IN TXT "v=spf1 include:dropped.example.org -all"`,
	)
	srv.SetDrop("dropped.example.org", true)
	c := &Checker{Resolver: &DNS{Server: srv.Addr, Timeout: 200 * time.Millisecond}}
	tests := []struct {
		ip, sender string
		result     Result
		trail      []string
		lookups    int
	}{
		{"192.0.2.9", "a@example.org", Pass, []string{"example.org: include:_spf.example.net", "_spf.example.net: ip4:192.0.2.0/24"}, 1},
		{"198.51.100.7", "a@example.org", Pass, []string{"example.org: redirect=rest.example.org", "rest.example.org: a:mail.example.org"}, 3},
		{"203.0.113.1", "a@example.org", SoftFail, []string{"example.org: redirect=rest.example.org", "rest.example.org: ~all"}, 3},
		{"203.0.113.1", "a@slow.example.org", TempError, []string{"slow.example.org: include:dropped.example.org"}, 1},
	}
	for _, tc := range tests {
		out := c.Check(context.Background(), netip.MustParseAddr(tc.ip), tc.sender, "helo.example.org")
		if out.Result != tc.result || strings.Join(out.Trail, "|") != strings.Join(tc.trail, "|") || out.Lookups != tc.lookups {
			t.Errorf("%s from %s: got %s trail %q lookups %d (%s), want %s trail %q lookups %d",
				tc.sender, tc.ip, out.Result, out.Trail, out.Lookups, out.Reason, tc.result, tc.trail, tc.lookups)
		}
		if tc.result == Pass && out.Mechanism != strings.SplitN(tc.trail[len(tc.trail)-1], ": ", 2)[1] {
			t.Errorf("mechanism %q, want the last step of %q", out.Mechanism, tc.trail)
		}
	}
}

// FuzzParseRecord feeds arbitrary records to the parser, which must return
// a record or a syntax error and never panic.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all", "v=spf1 a/24//64 mx:%{d2}.example.com ip6:::1/0 exp=%{l}.x.org",
		"v=spf1 exists:%{ir}.%{l1r-}.%{v}._spf.%{d} ?all", "v=spf1 redirect=%{", "v=spf1 a:", "v=spf1 %",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isSPF(s) {
			return
		}
		if _, err := parseRecord(s); err != nil && !strings.Contains(err.Error(), "syntax error") {
			t.Fatalf("error %v does not say syntax error", err)
		}
	})
}
