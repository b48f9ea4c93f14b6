package dnscheck

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseDMARC(t *testing.T) {
	tests := []struct {
		rec, want, err string
	}{
		{"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:a@example.org", "p=reject pct=100 adkim=s aspf=s rua=mailto:a@example.org ruf=none", ""},
		{"v=DMARC1;p=quarantine;pct=25;sp=none", "p=quarantine pct=25 adkim=r aspf=r sp=none rua=none (no aggregate reports) ruf=none", ""},
		{"v=DMARC1; rua=mailto:a@example.org", "", "no p= tag"},
		{"v=DMARC1; p=block", "", "want none, quarantine or reject"},
		{"v=DMARC1; p=none; pct=150", "", "want 0 to 100"},
		{"v=DMARC1; p=none; adkim=x", "", "want r or s"},
		{"v=DMARC1; p=none; rua=a@example.org", "", "is not a URI"},
		{"p=none; v=DMARC1", "", "does not start with v=DMARC1"},
	}
	for _, tc := range tests {
		rec, err := parseDMARC(tc.rec)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.rec, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.rec, err)
		case tc.err == "" && rec.describe() != tc.want:
			t.Errorf("%q: %s, want %s", tc.rec, rec.describe(), tc.want)
		}
	}
}

func TestSuggestSPF(t *testing.T) {
	add := []Source{{IP: mustAddr("192.0.2.11")}, {IP: mustAddr("2001:db8::11")}}
	tests := []struct{ record, want string }{
		{"", "v=spf1 ip4:192.0.2.11 ip6:2001:db8::11 ~all"},
		{"v=spf1 include:_spf.example.net -all", "v=spf1 include:_spf.example.net ip4:192.0.2.11 ip6:2001:db8::11 -all"},
		{"v=spf1 mx redirect=_spf.example.net", "v=spf1 mx ip4:192.0.2.11 ip6:2001:db8::11 redirect=_spf.example.net"},
		{"v=spf1 a", "v=spf1 a ip4:192.0.2.11 ip6:2001:db8::11"},
	}
	for _, tc := range tests {
		if got := suggestSPF(tc.record, add); got != tc.want {
			t.Errorf("suggestSPF(%q) = %q, want %q", tc.record, got, tc.want)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		id, from, mode string
		want           bool
	}{
		{"example.org", "example.org", "s", true},
		{"bounce.example.org", "example.org", "s", false},
		{"bounce.example.org", "example.org", "r", true},
		{"mail.example.co.uk", "example.co.uk", "r", true},
		{"other.co.uk", "example.co.uk", "r", false},
		{"", "example.org", "r", false},
	}
	for _, tc := range tests {
		if got := aligned(tc.id, tc.from, tc.mode); got != tc.want {
			t.Errorf("aligned(%q, %q, %s) = %v", tc.id, tc.from, tc.mode, got)
		}
	}
}

// TestLoadRulesReadsTheShippedRules reads the repository's rules as the
// node and the command do.
func TestLoadRulesReadsTheShippedRules(t *testing.T) {
	var p Platform
	if err := p.LoadRules("../../rules"); err != nil {
		t.Fatal(err)
	}
	ex, ok := p.Tenants["example"]
	if !ok || strings.Join(ex.SenderDomains, ",") != "example.com,example.org" || ex.DKIMDomain != "corriere-smarthost.it" {
		t.Errorf("tenant example: %+v", ex)
	}
	if p.PlatformDKIMDomain != "corriere-smarthost.it" || !strings.Contains(strings.Join(p.SubdomainSigners, ","), "negozio-esempio.it") {
		t.Errorf("platform %q, subdomain signers %q", p.PlatformDKIMDomain, p.SubdomainSigners)
	}
}

// FuzzParseDMARC and FuzzDKIMTags feed published records, which anyone
// writes, to the parsers: they must never panic.
func FuzzParseDMARC(f *testing.F) {
	f.Add("v=DMARC1; p=reject; pct=50; rua=mailto:a@b.c")
	f.Add("v=DMARC1;;p=")
	f.Fuzz(func(t *testing.T, s string) {
		if rec, err := parseDMARC(s); err == nil && rec.policy == "" {
			t.Fatalf("%q parsed without a policy", s)
		}
	})
}

func FuzzDKIMTags(f *testing.F) {
	f.Add("v=DKIM1; k=rsa; p=MIIB IjAN")
	f.Add("p=;;=;k")
	f.Fuzz(func(t *testing.T, s string) {
		for k := range dkimTags(s) {
			if k != strings.ToLower(strings.TrimSpace(k)) {
				t.Fatalf("tag %q not normalised", k)
			}
		}
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
