package node

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/admin"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/sim"
	"corriere/core/testlib"
	"corriere/core/tlsrpt"
)

// tlsWorld is a simulated internet with the cases of issue 17: an MTA-STS
// enforce domain and a testing one whose MX an attacker strips of
// STARTTLS, a DANE domain whose MX presents the attacker's certificate,
// a DANE domain and an MTA-STS domain left alone, and the domain the
// TLS-RPT reports go to.
func tlsWorld() *sim.World {
	mx := func(host, ip string) []sim.MX { return []sim.MX{{Host: host, Preference: 10, IP: ip}} }
	enforce, testing := &sim.MTASTS{Mode: "enforce"}, &sim.MTASTS{Mode: "testing"}
	return &sim.World{
		Providers: []sim.Provider{
			{Name: "stripped", STARTTLS: true, Attack: sim.AttackStripSTARTTLS, Domains: []sim.Domain{
				{Name: "enforce.example", MX: mx("mx.enforce.example", "127.0.17.1"), MTASTS: enforce},
				{Name: "testing.example", MX: mx("mx.testing.example", "127.0.17.2"), MTASTS: testing},
			}},
			{Name: "forged", STARTTLS: true, Attack: sim.AttackWrongCertificate, Domains: []sim.Domain{
				{Name: "dane.example", MX: mx("mx.dane.example", "127.0.17.3"), DANE: true},
			}},
			{Name: "honest", STARTTLS: true, Domains: []sim.Domain{
				{Name: "dane-ok.example", MX: mx("mx.dane-ok.example", "127.0.17.4"), DANE: true},
				{Name: "sts-ok.example", MX: mx("mx.sts-ok.example", "127.0.17.5"), MTASTS: enforce},
				{Name: "reports.example", MX: mx("mx.reports.example", "127.0.17.6")},
			}},
		},
		Records: []string{
			`_smtp._tls.enforce.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@reports.example"`,
			`_smtp._tls.testing.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@reports.example"`,
			`_smtp._tls.dane.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:tls@reports.example"`,
			// The sender's own MX, where the DSNs go: a mailtest receiver.
			"sender.example. 300 IN MX 10 mx.sender.example.",
			"mx.sender.example. 300 IN A " + senderMX,
		},
	}
}

// senderMX is the address of the sender domain's MX in tlsWorld.
const senderMX = "127.0.17.9"

// TestOutboundTLSPolicies is the outside check of issue 17: mail to the
// enforce and the mismatching DANE domain waits (deferred with a 4.7.x
// reply in the event log, nothing delivered) until it expires with a DSN
// that gives the policy's reply, mail to the testing domain is delivered
// in clear and the failure reported, and the day's TLS-RPT reports go out
// through the queue.
func TestOutboundTLSPolicies(t *testing.T) {
	t.Parallel()
	s, err := sim.Start(context.Background(), tlsWorld(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dsnBox := mailtest.Start(t, fmt.Sprintf("%s:%d", senderMX, s.MXPort()), mailtest.Options{Domain: "mx.sender.example"})
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	spoolDir := t.TempDir()
	n, err := Start(context.Background(), Config{
		Listen: "127.0.0.1:0", SpoolDir: spoolDir, Hostname: "mta.corriere-smarthost.it",
		DNSServers: []string{s.DNSAddr()}, MXPort: s.MXPort(),
		DANEResolvers: []string{s.DNSAddr()}, MTASTSPort: s.PolicyPort(), TLSRoots: roots,
		RelayNets:  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
		Retry: []time.Duration{100 * time.Millisecond}, MaxAge: 3 * time.Second,
		AdminListen: "127.0.0.1:0", AdminToken: "tls-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})

	rcpts := []string{"a@enforce.example", "b@testing.example", "c@dane.example", "d@dane-ok.example", "e@sts-ok.example"}
	for _, to := range rcpts {
		raw := fmt.Sprintf("From: <news@sender.example>\r\nTo: <%s>\r\nSubject: TLS policy\r\nMessage-ID: <%s.tls@sender.example>\r\n\r\nHello.\r\n", to, strings.Split(to, "@")[0])
		if err := sendRaw(n.Addr(), "news@sender.example", to, raw); err != nil {
			t.Fatalf("submit to %s: %v", to, err)
		}
	}

	delivered := func(rcpt string) *sim.Delivery {
		for _, d := range s.Deliveries() {
			if d.Recipient == rcpt {
				return &d
			}
		}
		return nil
	}
	testlib.WaitFor(t, "the three deliveries the policies allow", func() bool {
		return delivered("b@testing.example") != nil && delivered("d@dane-ok.example") != nil && delivered("e@sts-ok.example") != nil
	})
	for rcpt, wantTLS := range map[string]bool{"b@testing.example": false, "d@dane-ok.example": true, "e@sts-ok.example": true} {
		if d := delivered(rcpt); d.TLS != wantTLS {
			t.Errorf("%s delivered with TLS=%v, want %v", rcpt, d.TLS, wantTLS)
		}
	}

	// The enforce and DANE domains' mail is deferred, again and again,
	// with the policy's reply, and never reaches the attacker.
	wantReply := map[string]string{"a@enforce.example": "451 4.7.10", "c@dane.example": "451 4.7.5"}
	testlib.WaitFor(t, "three deferrals of each protected recipient in the event log", func() bool {
		counts := deferrals(t, spoolDir, wantReply)
		return counts["a@enforce.example"] >= 3 && counts["c@dane.example"] >= 3
	})
	for rcpt := range wantReply {
		if d := delivered(rcpt); d != nil {
			t.Errorf("%s was delivered (TLS=%v) to an attacked MX", rcpt, d.TLS)
		}
	}
	counts := deferrals(t, spoolDir, wantReply)
	t.Logf("event log: deferred under the TLS policy: %v; delivered: %d of %d", counts, len(s.Deliveries()), len(rcpts))

	// TLS-RPT: today's reports count the failures, and go out through the
	// queue to the domains' rua.
	rec := n.TLSReports()
	today := time.Now()
	for _, c := range []struct {
		domain, failure string
		policyType      string
	}{
		{"enforce.example", tlsrpt.ResultStartTLSNotSupported, tlsrpt.PolicySTS},
		{"testing.example", tlsrpt.ResultStartTLSNotSupported, tlsrpt.PolicySTS},
		{"dane.example", tlsrpt.ResultTLSAInvalid, tlsrpt.PolicyTLSA},
	} {
		rep := rec.Report(today, c.domain)
		if rep == nil || len(rep.Policies) != 1 || rep.Policies[0].Policy.Type != c.policyType ||
			rep.Policies[0].Summary.Failed == 0 || rep.Policies[0].FailureDetails[0].ResultType != c.failure {
			js, _ := json.Marshal(rep)
			t.Fatalf("report of %s: %s; want %s failures under %s", c.domain, js, c.failure, c.policyType)
		}
		t.Logf("TLS-RPT %s: %d successful, %d failed sessions (%s)", c.domain,
			rep.Policies[0].Summary.Successful, rep.Policies[0].Summary.Failed, rep.Policies[0].FailureDetails[0].ResultType)
	}
	if rep := rec.Report(today, "dane-ok.example"); rep == nil || rep.Policies[0].Summary.Successful == 0 || rep.Policies[0].Summary.Failed != 0 {
		t.Fatalf("report of dane-ok.example: %+v; want successes only", rep)
	}
	// Sent now through the admin API, as corriere tlsrpt --send does,
	// instead of after midnight.
	var res tlsrpt.SendResult
	api := &admin.Client{Addr: n.AdminAddr(), Token: "tls-test"}
	if err := api.Post(context.Background(), "/api/tlsrpt/send?day="+today.UTC().Format(time.DateOnly), &res); err != nil || res.Sent != 3 {
		t.Fatalf("POST /api/tlsrpt/send: %+v, %v; want 3 reports", res, err)
	}
	// Past MaxAge the held mail expires, and the DSN says why it waited.
	msgs := dsnBox.Wait(t, 2, 20*time.Second)
	var dsns strings.Builder
	for _, m := range msgs {
		dsns.Write(m.Data)
	}
	for _, want := range []string{
		"Final-Recipient: rfc822; a@enforce.example", "451 4.7.10 TLS policy mta-sts enforce: mx.enforce.example: STARTTLS unavailable",
		"Final-Recipient: rfc822; c@dane.example", "451 4.7.5 TLS policy dane: mx.dane.example",
	} {
		if !strings.Contains(strings.ReplaceAll(dsns.String(), "\r\n ", " "), want) {
			t.Errorf("the DSNs lack %q:\n%s", want, dsns.String())
		}
	}
	// They are DKIM-signed by the node's domain (rules/dkim.lua signs
	// corriere-smarthost.it and its subdomains), as RFC 8460 asks.
	testlib.WaitFor(t, "the three signed reports delivered to tls@reports.example", func() bool {
		n := 0
		for _, d := range s.Deliveries() {
			h := string(d.Header)
			if d.Recipient == "tls@reports.example" && strings.Contains(h, "TLS-Report-Domain:") &&
				strings.Contains(h, "DKIM-Signature:") && strings.Contains(h, "d=corriere-smarthost.it") {
				n++
			}
		}
		return n == 3
	})
}

// deferrals counts the deferred events of the event log whose reply
// starts as want says, by recipient.
func deferrals(t *testing.T, spoolDir string, want map[string]string) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(spoolDir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Type != event.Deferred {
			continue
		}
		if prefix, ok := want[e.Recipient]; ok && strings.HasPrefix(e.Reply, prefix) {
			counts[e.Recipient]++
		}
	}
	return counts
}
