package dnscheck_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/dnscheck"
	"corriere/core/spf"
)

// newKeyRecord returns the DKIM record of a fresh Ed25519 key.
func newKeyRecord(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// fixture is a platform with two source IPs, a tenant "acme" sending From:
// example.org with its own key, and a re-enveloping tenant "clinic" whose
// mail From: doctor.example leaves on bounces.platform.example, signed by
// the platform domain.
type fixture struct {
	srv        *authserver.Server
	platform   *dnscheck.Platform
	acmeKey    string
	platKey    string
	otherKey   string
	listenerIP string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, acmeKey: newKeyRecord(t), platKey: newKeyRecord(t), otherKey: newKeyRecord(t), listenerIP: "192.0.2.25"}
	f.platform = &dnscheck.Platform{
		Sources: []dnscheck.Source{
			{IP: netip.MustParseAddr("192.0.2.10"), HELO: "out10.mta.platform.example"},
			{IP: netip.MustParseAddr("192.0.2.11"), HELO: "out11.mta.platform.example"},
		},
		Keys: []dnscheck.Key{
			{Domain: "example.org", Selector: "corriere", Record: f.acmeKey, Active: true},
			{Domain: "platform.example", Selector: "corriere", Record: f.platKey, Active: true},
		},
		PlatformDKIMDomain: "platform.example",
		SubdomainSigners:   []string{"platform.example"},
		Tenants: map[string]dnscheck.Tenant{
			"acme":   {Name: "acme", SenderDomains: []string{"example.org"}},
			"clinic": {Name: "clinic", SenderDomains: []string{"doctor.example"}, Reenvelope: true, BounceDomain: "bounces.platform.example"},
		},
		BounceListener: f.listenerIP + ":25",
	}
	return f
}

// good publishes everything right for both tenants.
func (f *fixture) good(t *testing.T) {
	t.Helper()
	f.srv.MustAdd(
		`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"`,
		`corriere._domainkey.example.org. 300 IN TXT "`+f.acmeKey+`"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.org"`,
		`bounces.platform.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`bounces.platform.example. 300 IN MX 10 mx.platform.example.`,
		`mx.platform.example. 300 IN A `+f.listenerIP,
		`corriere._domainkey.platform.example. 300 IN TXT "`+f.platKey+`"`,
		`_dmarc.doctor.example. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@doctor.example"`,
		`10.2.0.192.in-addr.arpa. 300 IN PTR out10.mta.platform.example.`,
		`11.2.0.192.in-addr.arpa. 300 IN PTR out11.mta.platform.example.`,
		`out10.mta.platform.example. 300 IN A 192.0.2.10`,
		`out11.mta.platform.example. 300 IN A 192.0.2.11`,
		`out10.mta.platform.example. 300 IN TXT "v=spf1 a -all"`,
		`out11.mta.platform.example. 300 IN TXT "v=spf1 a -all"`,
	)
}

func (f *fixture) checker() *dnscheck.Checker {
	return &dnscheck.Checker{
		Resolver: &spf.DNS{Server: f.srv.Addr, Timeout: 2 * time.Second},
		Platform: f.platform, Hostname: "mx.platform.example",
		Now: func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) },
	}
}

func errorsOf(r *dnscheck.Report) []dnscheck.Finding {
	var out []dnscheck.Finding
	for _, f := range r.Findings {
		if f.Status == dnscheck.Error {
			out = append(out, f)
		}
	}
	return out
}

func dump(r *dnscheck.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// TestEverythingRightReportsNoError checks a zone where SPF, DKIM, DMARC,
// reverse DNS and the bounce domain are all as the platform needs.
func TestEverythingRightReportsNoError(t *testing.T) {
	f := newFixture(t)
	f.good(t)
	r, err := f.checker().Check(context.Background(), []string{"example.org"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Count(dnscheck.Error) != 0 || r.Count(dnscheck.Warning) != 0 {
		t.Fatalf("want only ok findings:\n%s", dump(r))
	}
	var alignment *dnscheck.Finding
	for i, fd := range r.Findings {
		if fd.Check == dnscheck.CheckDMARC && fd.Subject == "alignment" {
			alignment = &r.Findings[i]
		}
	}
	if alignment == nil || !strings.Contains(alignment.Meaning, "SPF (example.org) and DKIM (d=example.org)") {
		t.Fatalf("alignment finding %+v", alignment)
	}
}

// TestOutsideCheckReportsExactlyTheFourErrors is the acceptance check: SPF
// misses one source IP, the DKIM record holds a different key, DMARC is
// p=reject with strict alignment and one PTR is missing; exactly those four
// errors come back, each with the record to publish.
func TestOutsideCheckReportsExactlyTheFourErrors(t *testing.T) {
	f := newFixture(t)
	f.srv.MustAdd(
		`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`corriere._domainkey.example.org. 300 IN TXT "`+f.otherKey+`"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.org"`,
		`10.2.0.192.in-addr.arpa. 300 IN PTR out10.mta.platform.example.`,
		`out10.mta.platform.example. 300 IN A 192.0.2.10`,
		`out11.mta.platform.example. 300 IN A 192.0.2.11`,
		`out10.mta.platform.example. 300 IN TXT "v=spf1 a -all"`,
		`out11.mta.platform.example. 300 IN TXT "v=spf1 a -all"`,
	)
	r, err := f.checker().Check(context.Background(), []string{"example.org"}, "acme")
	if err != nil {
		t.Fatal(err)
	}
	keyFix := `corriere._domainkey.example.org. 3600 IN TXT "` + f.acmeKey + `"`
	want := []struct {
		check   dnscheck.Check
		subject string
		fix     string
	}{
		{dnscheck.CheckSPF, "192.0.2.11", `example.org. 3600 IN TXT "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"`},
		{dnscheck.CheckDKIM, "corriere._domainkey.example.org", keyFix},
		{dnscheck.CheckDMARC, "alignment", keyFix},
		{dnscheck.CheckPTR, "192.0.2.11", "11.2.0.192.in-addr.arpa. 3600 IN PTR out11.mta.platform.example."},
	}
	got := errorsOf(r)
	if len(got) != len(want) {
		t.Fatalf("%d errors, want %d:\n%s", len(got), len(want), dump(r))
	}
	for i, w := range want {
		g := got[i]
		if g.Check != w.check || g.Subject != w.subject || g.Fix != w.fix || g.Meaning == "" {
			t.Errorf("error %d: %s %s fix %q, want %s %s fix %q", i, g.Check, g.Subject, g.Fix, w.check, w.subject, w.fix)
		}
	}
	if r.Count(dnscheck.Warning) != 0 {
		t.Errorf("unexpected warnings:\n%s", dump(r))
	}
	if !strings.Contains(r.Rotation, "corriere dkim keygen") {
		t.Errorf("a DKIM error should explain key rotation, got %q", r.Rotation)
	}
}

// TestFailures checks the findings of single failures, one zone each.
func TestFailures(t *testing.T) {
	tests := []struct {
		name    string
		domain  string
		change  func(f *fixture)
		status  dnscheck.Status
		check   dnscheck.Check
		subject string
		// in is text the finding's meaning, detail or fix must hold.
		in string
	}{
		{"no SPF record", "example.org", func(f *fixture) { f.srv.Remove("example.org") },
			dnscheck.Error, dnscheck.CheckSPF, "record", `example.org. 3600 IN TXT "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 ~all"`},
		{"SPF over the lookup limit", "example.org", func(f *fixture) {
			f.srv.Remove("example.org")
			var incs []string
			for i := range 11 {
				incs = append(incs, fmt.Sprintf("include:i%d.example.org", i))
				f.srv.MustAdd(fmt.Sprintf(`i%d.example.org. 300 IN TXT "v=spf1 ip4:198.51.100.%d -all"`, i, i))
			}
			f.srv.MustAdd(`example.org. 300 IN TXT "v=spf1 ` + strings.Join(incs, " ") + ` -all"`)
		}, dnscheck.Error, dnscheck.CheckSPF, "record", "more than 10 DNS-querying terms"},
		{"SPF syntax error", "example.org", func(f *fixture) {
			f.srv.Remove("example.org")
			f.srv.MustAdd(`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.300 -all"`)
		}, dnscheck.Error, dnscheck.CheckSPF, "record", "invalid address"},
		{"DKIM record missing", "example.org", func(f *fixture) { f.srv.Remove("corriere._domainkey.example.org") },
			dnscheck.Error, dnscheck.CheckDKIM, "corriere._domainkey.example.org", "is not published"},
		{"DKIM key revoked", "example.org", func(f *fixture) {
			f.srv.Remove("corriere._domainkey.example.org")
			f.srv.MustAdd(`corriere._domainkey.example.org. 300 IN TXT "v=DKIM1; k=ed25519; p="`)
		}, dnscheck.Error, dnscheck.CheckDKIM, "corriere._domainkey.example.org", "revokes"},
		{"selector published but not configured", "example.org", func(f *fixture) {
			f.srv.MustAdd(`selector1._domainkey.example.org. 300 IN TXT "` + f.otherKey + `"`)
		}, dnscheck.Warning, dnscheck.CheckDKIM, "selector1._domainkey.example.org", "does not configure"},
		{"DMARC does not parse", "example.org", func(f *fixture) {
			f.srv.Remove("_dmarc.example.org")
			f.srv.MustAdd(`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=block"`)
		}, dnscheck.Error, dnscheck.CheckDMARC, "_dmarc.example.org", "want none, quarantine or reject"},
		{"no DMARC record", "example.org", func(f *fixture) { f.srv.Remove("_dmarc.example.org") },
			dnscheck.Warning, dnscheck.CheckDMARC, "_dmarc.example.org", `_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org"`},
		{"re-enveloped tenant under p=reject", "doctor.example", func(f *fixture) {
			f.srv.Remove("_dmarc.doctor.example")
			f.srv.MustAdd(`_dmarc.doctor.example. 300 IN TXT "v=DMARC1; p=reject"`)
		}, dnscheck.Error, dnscheck.CheckDMARC, "alignment", "re-envelopes"},
		{"bounce MX elsewhere", "doctor.example", func(f *fixture) {
			f.srv.Remove("mx.platform.example")
			f.srv.MustAdd(`mx.platform.example. 300 IN A 203.0.113.5`)
		}, dnscheck.Error, dnscheck.CheckMX, "MX", "bounces.platform.example. 3600 IN MX 10 mx.platform.example."},
		{"bounce domain without MX", "doctor.example", func(f *fixture) {
			f.srv.Remove("bounces.platform.example")
			f.srv.MustAdd(`bounces.platform.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
		}, dnscheck.Error, dnscheck.CheckMX, "MX", "has no MX"},
		{"PTR not confirmed", "example.org", func(f *fixture) { f.srv.Remove("out10.mta.platform.example") },
			dnscheck.Error, dnscheck.CheckPTR, "192.0.2.10", "out10.mta.platform.example. 3600 IN A 192.0.2.10"},
		{"HELO is not the PTR name", "example.org", func(f *fixture) {
			f.srv.Remove("10.2.0.192.in-addr.arpa")
			f.srv.MustAdd(`10.2.0.192.in-addr.arpa. 300 IN PTR mail.platform.example.`, `mail.platform.example. 300 IN A 192.0.2.10`)
		}, dnscheck.Warning, dnscheck.CheckPTR, "192.0.2.10", `set helo = "mail.platform.example"`},
		{"HELO name without SPF", "example.org", func(f *fixture) {
			f.srv.Remove("out11.mta.platform.example")
			f.srv.MustAdd(`out11.mta.platform.example. 300 IN A 192.0.2.11`)
		}, dnscheck.Warning, dnscheck.CheckSPF, "HELO out11.mta.platform.example", `out11.mta.platform.example. 3600 IN TXT "v=spf1 a -all"`},
		{"HELO name SPF fails", "example.org", func(f *fixture) {
			f.srv.Remove("out10.mta.platform.example")
			f.srv.MustAdd(`out10.mta.platform.example. 300 IN A 192.0.2.10`, `out10.mta.platform.example. 300 IN TXT "v=spf1 ip4:198.51.100.1 -all"`)
		}, dnscheck.Error, dnscheck.CheckSPF, "HELO out10.mta.platform.example", "gives fail"},
		{"MTA-STS without id", "example.org", func(f *fixture) {
			f.srv.MustAdd(`_mta-sts.example.org. 300 IN TXT "v=STSv1;"`)
		}, dnscheck.Error, dnscheck.CheckMTASTS, "_mta-sts.example.org", "v=STSv1; id=20261203T120000"},
		{"TLS-RPT present", "example.org", func(f *fixture) {
			f.srv.MustAdd(`_smtp._tls.example.org. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@example.org"`)
		}, dnscheck.OK, dnscheck.CheckTLSRPT, "_smtp._tls.example.org", "mailto:tls@example.org"},
		{"return-path domain aligns SPF under relaxed DMARC", "example.org", func(f *fixture) {
			f.platform.Tenants["acme"] = dnscheck.Tenant{Name: "acme", SenderDomains: []string{"example.org"}, ReturnPathDomain: "rp.example.org"}
			f.srv.Remove("corriere._domainkey.example.org")
			f.srv.Remove("_dmarc.example.org")
			f.srv.MustAdd(`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject; aspf=r"`,
				`rp.example.org. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`, `rp.example.org. 300 IN MX 10 mx.platform.example.`)
		}, dnscheck.OK, dnscheck.CheckDMARC, "alignment", "passes DMARC through SPF (rp.example.org)"},
		{"return-path domain does not align under strict DMARC", "example.org", func(f *fixture) {
			f.platform.Tenants["acme"] = dnscheck.Tenant{Name: "acme", SenderDomains: []string{"example.org"}, ReturnPathDomain: "rp.example.org"}
			f.srv.Remove("corriere._domainkey.example.org")
			f.srv.MustAdd(`rp.example.org. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`, `rp.example.org. 300 IN MX 10 mx.platform.example.`)
		}, dnscheck.Error, dnscheck.CheckDMARC, "alignment", "envelope domain rp.example.org does not align with example.org (aspf=s)"},
		{"DNS failure is a warning", "example.org", func(f *fixture) { f.srv.SetServFail("_dmarc.example.org", true) },
			dnscheck.Warning, dnscheck.CheckDMARC, "_dmarc.example.org", "SERVFAIL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.good(t)
			tc.change(f)
			r, err := f.checker().Check(context.Background(), []string{tc.domain}, "")
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(r.Findings, func(fd dnscheck.Finding) bool {
				return fd.Check == tc.check && fd.Subject == tc.subject && fd.Status == tc.status
			})
			if i < 0 {
				t.Fatalf("no %s %s finding on %s:\n%s", tc.status, tc.check, tc.subject, dump(r))
			}
			fd := r.Findings[i]
			if !strings.Contains(fd.Meaning+"|"+fd.Detail+"|"+fd.Fix, tc.in) {
				t.Errorf("finding %+v does not say %q", fd, tc.in)
			}
		})
	}
}

// TestRefusedInput checks that a tenant rules/tenants does not define, or
// something that is not a domain name, is an error, not a check.
func TestRefusedInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		domain, tenant string
		want           error
	}{
		{"example.org", "nobody", dnscheck.ErrUnknownTenant},
		{"[192.0.2.1]", "", dnscheck.ErrNotADomain},
		{"localhost", "", dnscheck.ErrNotADomain},
		{"a..example.org", "", dnscheck.ErrNotADomain},
		{"", "", dnscheck.ErrNotADomain},
	}
	for _, tc := range tests {
		if _, err := f.checker().Check(context.Background(), []string{tc.domain}, tc.tenant); !errors.Is(err, tc.want) {
			t.Errorf("Check(%q, tenant %q) = %v, want %v", tc.domain, tc.tenant, err, tc.want)
		}
	}
}

// TestTenantWithoutSenderDomains checks a re-enveloping account that may
// send From: any domain: its bounce domain is still checked.
func TestTenantWithoutSenderDomains(t *testing.T) {
	f := newFixture(t)
	f.good(t)
	f.platform.Tenants["relay"] = dnscheck.Tenant{Name: "relay", Reenvelope: true, BounceDomain: "bounces.platform.example"}
	r, err := f.checker().Check(context.Background(), nil, "relay")
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, fd := range r.Findings {
		if fd.Domain == "bounces.platform.example" && fd.Status == dnscheck.OK {
			checked = append(checked, string(fd.Check)+" "+fd.Subject)
		}
	}
	if strings.Join(checked, ",") != "mx MX,spf 192.0.2.10,spf 192.0.2.11" || r.Count(dnscheck.Error) != 0 {
		t.Errorf("bounce domain checks %q, want its MX and SPF ok:\n%s", checked, dump(r))
	}
}

// TestSharedSigningDomain checks two sender domains signed by the platform
// domain: its keys are checked once, and the second domain points at them.
func TestSharedSigningDomain(t *testing.T) {
	f := newFixture(t)
	f.good(t)
	f.platform.Tenants["clinic"] = dnscheck.Tenant{Name: "clinic", SenderDomains: []string{"doctor.example", "dentist.example"},
		Reenvelope: true, BounceDomain: "bounces.platform.example"}
	r, err := f.checker().Check(context.Background(), []string{"doctor.example", "dentist.example"}, "clinic")
	if err != nil {
		t.Fatal(err)
	}
	keyChecks, pointers := 0, 0
	for _, fd := range r.Findings {
		switch {
		case fd.Subject == "corriere._domainkey.platform.example":
			keyChecks++
		case fd.Domain == "dentist.example" && fd.Subject == "signing domain" && fd.Status == dnscheck.OK:
			pointers++
		}
	}
	if keyChecks != 1 || pointers != 1 {
		t.Errorf("%d checks of the platform key and %d pointers to it, want 1 and 1:\n%s", keyChecks, pointers, dump(r))
	}
}
