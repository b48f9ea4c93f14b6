package node

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"
	"golang.org/x/crypto/bcrypt"

	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/mailtest"
	"corriere/core/sim"
	"corriere/core/testlib"
	"corriere/core/verp"
	"corriere/plugins/dkim"
)

// A hosting customer that sends from its own domain, negozio-test.it, and
// has its own return-path domain: bounce.negozio-test.it, whose MX is the
// bounce listener and whose SPF includes the platform.
const (
	shop         = "ordini@negozio-test.it"
	shopPass     = "another password for this test only"
	returnPath   = "bounce.negozio-test.it"
	operatorDesk = "corriere.noc@gmail.com" // --postmaster
)

// doubledReply matches a reply code and status quoted twice in a row
// ("550 5.1.1 550 5.1.1"), the bug of issue 14.
var doubledReply = regexp.MustCompile(`\b([45]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3}) ([45]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b`)

// returnPathTweak adds the negozio tenant, the DNS of its domains (its own
// MX, where the test's receiver listens on 127.0.0.11, and the MX and SPF
// of its return-path domain) and the operator's postmaster address.
var returnPathTweak = caseTweak{
	world: func(rules string, w *sim.World) {
		hash, err := bcrypt.GenerateFromPassword([]byte(shopPass), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		tenant := fmt.Sprintf("return {\n  password_hash = %q,\n  sender_domains = { \"negozio-test.it\" },\n  return_path_domain = %q,\n}\n", hash, returnPath)
		if err := os.WriteFile(filepath.Join(rules, "tenants", "negozio.lua"), []byte(tenant), 0o644); err != nil {
			panic(err)
		}
		w.Records = append(w.Records,
			"negozio-test.it. 300 IN MX 10 mx.negozio-test.it.",
			"mx.negozio-test.it. 300 IN A 127.0.0.11",
			returnPath+". 300 IN MX 10 mx-bounces.corriere-smarthost.it.",
			returnPath+". 300 IN TXT \"v=spf1 include:bounces.corriere-smarthost.it -all\"",
		)
	},
	config: func(cfg *Config) { cfg.Postmaster = operatorDesk },
}

// referenceOf returns the value of the reference header on top of a
// delivered header section.
func referenceOf(t *testing.T, header []byte) string {
	t.Helper()
	first, _, _ := bytes.Cut(header, []byte("\r\n"))
	name, value, ok := strings.Cut(string(first), ": ")
	if !ok || name != verp.RefHeader {
		t.Fatalf("delivered header starts with %q, want %s", first, verp.RefHeader)
	}
	return value
}

// Issue 14, done when 1, 2 and 5: a tenant with return_path_domain sends
// through the node; the receiver sees a verifying VERP envelope sender on
// that domain and the tenant's From:; a late DSN to that address
// suppresses the recipient for the tenant, and the DSN forwarded to the
// tenant, the event, the suppression and the later RCPT refusal quote the
// provider's reply once.
func TestReturnPathDomainEndToEnd(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t, returnPathTweak)
	owner := mailtest.Start(t, fmt.Sprintf("127.0.0.11:%d", c.port), mailtest.Options{})
	events := &eventtest.Recorder{}
	c.node.Subscribe(events)

	header := "From: Negozio Test <" + shop + ">\r\nTo: clienti\r\nSubject: Il tuo ordine\r\n"
	if err := c.submit(t, "negozio", shopPass, shop, header, patient, lateBounce); err != nil {
		t.Fatalf("submission refused: %v", err)
	}
	testlib.WaitFor(t, "the delivery to the patient", func() bool { return len(c.deliveriesTo(patient)) > 0 })
	d := c.deliveriesTo(patient)[0]
	ref, err := c.key.Parse(d.From)
	if err != nil || !strings.HasSuffix(d.From, "@"+returnPath) {
		t.Fatalf("envelope sender %q: want a verifying VERP address on %s (%v)", d.From, returnPath, err)
	}
	h := string(d.Header)
	if !strings.Contains(h, "\r\nFrom: Negozio Test <"+shop+">\r\n") || strings.Contains(h, "\r\nSender:") {
		t.Errorf("delivered header: want the tenant's From: and no Sender:\n%s", h)
	}
	got, err := c.key.Open(referenceOf(t, d.Header))
	if err != nil || got.Tenant != "negozio" || got.MsgID != ref.MsgID || got.Rcpt != patient || got.Source != "127.0.0.2" || got.Provider == "" {
		t.Errorf("reference header names %+v (%v), want negozio's message %s to %s from 127.0.0.2", got, err, ref.MsgID, patient)
	}

	// The provider accepted bounce-luca@yahoo.com and bounces it later, to
	// its VERP address on the return-path domain.
	var reply string
	testlib.WaitFor(t, "the late bounce's event", func() bool {
		for _, e := range events.Of(event.Bounced) {
			if e.Recipient == lateBounce && e.Tenant == "negozio" && strings.Contains(e.Reason, "asynchronous") {
				reply = e.Reply
			}
		}
		return reply != ""
	})
	bounced := events.Of(event.Bounced)
	if reply == "" || doubledReply.MatchString(reply) || !strings.HasPrefix(reply, "5") {
		t.Fatalf("bounced events %+v: want the late bounce of %s for negozio, its reply quoted once", bounced, lateBounce)
	}
	// The DSN forwarded to the tenant's own address.
	dsn := owner.Wait(t, 1, 10*time.Second)[0]
	if dsn.From != "" || len(dsn.To) != 1 || dsn.To[0] != shop {
		t.Fatalf("forwarded DSN from %q to %v, want from <> to %s", dsn.From, dsn.To, shop)
	}
	own, _, _ := strings.Cut(string(dsn.Data), "Content-Type: message/rfc822")
	if doubledReply.MatchString(own) || strings.Count(own, reply) != 2 {
		t.Errorf("forwarded DSN quotes %q %d times (want twice: Diagnostic-Code and the plain part), doubled: %v\n%s",
			reply, strings.Count(own, reply), doubledReply.FindString(own), own)
	}
	// The tenant's next message to that address is refused, quoting the
	// reply once.
	err = c.submit(t, "negozio", shopPass, shop, header, lateBounce)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || !strings.Contains(se.Message, "suppressed") || strings.Count(se.Message, reply) != 1 || doubledReply.MatchString(se.Message) {
		t.Errorf("negozio to %s again: %v, want 550 naming the suppression and quoting %q once", lateBounce, err, reply)
	}
	// Another tenant may still write to it.
	other := "From: <" + otherSender + ">\r\nSubject: Avviso\r\n"
	if err := c.submit(t, otherTenant, otherPass, otherSender, other, lateBounce); err != nil {
		t.Errorf("another tenant to %s: %v, want it accepted", lateBounce, err)
	}
}

// arfQuotingHeaders is a feedback report to the platform's FBL address
// whose only trace of the message is its header section with the
// recipient redacted, as Microsoft's and Yahoo's loops send them.
func arfQuotingHeaders(refValue string) string {
	return "From: staff@hotmail.com\r\nTo: " + fblAddress + "\r\nSubject: complaint about message from 127.0.0.2\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=\"fb\"\r\n\r\n" +
		"--fb\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n" +
		"--fb\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\nSource-IP: 127.0.0.2\r\n" +
		"--fb\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		verp.RefHeader + ": " + refValue + "\r\nFrom: <" + otherSender + ">\r\nTo: [redacted]\r\nSubject: Avviso\r\n--fb--\r\n"
}

// Issue 14, done when 3 and 4: a tenant that neither re-envelopes nor has
// a return-path domain sends; a feedback report with a forged reference
// suppresses nothing and stays unattributed; the report that quotes only
// the original header section (the reference, the recipient redacted)
// suppresses the recipient for that tenant and counts in the tenant's,
// the IP's and the provider's complaint rates.
func TestComplaintQuotingOnlyHeadersEndToEnd(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t)
	header := "From: <" + otherSender + ">\r\nSubject: Avviso\r\n"
	if err := c.submit(t, otherTenant, otherPass, otherSender, header, patient); err != nil {
		t.Fatalf("submission refused: %v", err)
	}
	testlib.WaitFor(t, "the delivery to the patient", func() bool { return len(c.deliveriesTo(patient)) > 0 })
	d := c.deliveriesTo(patient)[0]
	if d.From != otherSender {
		t.Fatalf("envelope sender %q, want the tenant's own %s", d.From, otherSender)
	}
	value := referenceOf(t, d.Header)

	// A forged reference: the real one with one character changed.
	i := len(value) / 2
	forged := value[:i] + map[bool]string{true: "B", false: "A"}[value[i] == 'A'] + value[i+1:]
	if err := sendRaw(c.node.BounceAddr(), "staff@hotmail.com", fblAddress, arfQuotingHeaders(forged)); err != nil {
		t.Fatalf("report refused: %v", err)
	}
	if got := c.node.Bounces().Counts(); got.Unattributed != 1 || got.Complaints != 0 {
		t.Errorf("counts after the forged report %+v, want it unattributed", got)
	}
	if _, found, err := c.node.suppression.Lookup(otherTenant, patient); err != nil || found {
		t.Errorf("a forged reference suppressed %s (found %v, err %v)", patient, found, err)
	}

	if err := sendRaw(c.node.BounceAddr(), "staff@hotmail.com", fblAddress, arfQuotingHeaders(value)); err != nil {
		t.Fatalf("report refused: %v", err)
	}
	if got := c.node.Bounces().Counts(); got.Complaints != 1 || got.Referenced != 1 {
		t.Errorf("counts after the report %+v, want one complaint through the reference", got)
	}
	err := c.submit(t, otherTenant, otherPass, otherSender, header, patient)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || !strings.Contains(se.Message, "suppressed") {
		t.Errorf("%s to %s after the complaint: %v, want 550 suppressed", otherTenant, patient, err)
	}
	if err := c.submit(t, "ricette", ricettePass, doctor, "From: "+doctor+"\r\nSubject: x\r\n", patient); err != nil {
		t.Errorf("another tenant to %s: %v, want it accepted", patient, err)
	}
	for _, tc := range []struct {
		name string
		n    int64
	}{
		{"tenant", c.node.stats.TenantCounts(otherTenant, time.Hour).Complained},
		{"source IP", c.node.stats.Counts("127.0.0.2", "", "", time.Hour).Complained},
		{"provider", c.node.stats.Counts("", "gmail", "", time.Hour).Complained},
	} {
		if tc.n != 1 {
			t.Errorf("%s complaints = %d, want 1", tc.name, tc.n)
		}
	}
}

// Issue 14, done when 6: the bounce listener takes mail for postmaster of
// its domains — the tenant's return-path domain, the bounce domain, its
// host name — and hands it to the operator's --postmaster address; it
// still refuses postmaster of domains it does not serve.
func TestPostmasterEndToEnd(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t, returnPathTweak)
	raw := "From: admin@gmail.com\r\nSubject: about your server\r\n\r\nHello postmaster.\r\n"
	for _, rcpt := range []string{"postmaster@" + returnPath, "postmaster@bounces.corriere-smarthost.it", "Postmaster@mta.corriere-smarthost.it"} {
		if err := sendRaw(c.node.BounceAddr(), "admin@gmail.com", rcpt, raw); err != nil {
			t.Errorf("mail to %s: %v, want it accepted", rcpt, err)
		}
	}
	err := sendRaw(c.node.BounceAddr(), "admin@gmail.com", "postmaster@elsewhere.example", raw)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("mail to postmaster@elsewhere.example: %v, want 550", err)
	}
	testlib.WaitFor(t, "three messages at the operator's desk", func() bool { return len(c.deliveriesTo(operatorDesk)) == 3 })
	for _, d := range c.deliveriesTo(operatorDesk) {
		sc := bufio.NewScanner(bytes.NewReader(d.Header))
		sc.Scan()
		if d.From != "" || !strings.HasPrefix(sc.Text(), verp.RefHeader+": ") || !bytes.Contains(d.Header, []byte("Subject: about your server")) {
			t.Errorf("at the operator's desk from %q:\n%s", d.From, d.Header)
		}
	}
}

// platformKeyRecord returns the DKIM record of the demo platform key in
// rules/keys (PKCS#8), which the simulated DNS does not publish.
func platformKeyRecord(t *testing.T, rules string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rules, "keys", "corriere-smarthost.it.corriere.rsa.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block in the platform key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dkim.Record(k.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return "corriere._domainkey.corriere-smarthost.it. 300 IN TXT " + dkim.QuotedTXT(rec)
}

// TestReferenceKeepsDKIMValid: the reference header the queue puts on top
// of a message after DKIM signed it at ingest leaves the signature valid,
// as a receiver's verifier (go-msgauth) sees it.
func TestReferenceKeepsDKIMValid(t *testing.T) {
	t.Parallel()
	c := startCaseStudy(t, returnPathTweak, caseTweak{world: func(rules string, w *sim.World) {
		w.Records = append(w.Records, platformKeyRecord(t, rules))
	}})
	owner := mailtest.Start(t, fmt.Sprintf("127.0.0.11:%d", c.port), mailtest.Options{})
	header := "From: Negozio Test <" + shop + ">\r\nTo: magazzino\r\nSubject: Ordine 42\r\n"
	if err := c.submit(t, "negozio", shopPass, shop, header, "magazzino@negozio-test.it"); err != nil {
		t.Fatalf("submission refused: %v", err)
	}
	got := owner.Wait(t, 1, 10*time.Second)[0]
	if _, err := c.key.Open(referenceOf(t, got.Data)); err != nil {
		t.Fatalf("reference on top: %v", err)
	}
	lookup := func(name string) ([]string, error) {
		q := new(mdns.Msg)
		q.SetQuestion(mdns.Fqdn(name), mdns.TypeTXT)
		r, _, err := (&mdns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(q, c.sim.DNSAddr())
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*mdns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		return out, nil
	}
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(got.Data), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) == 0 {
		t.Fatalf("DKIM verification: %v, %d signatures", err, len(vs))
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("signature d=%s: %v", v.Domain, v.Err)
		}
	}
}

// TestStartWarnsAboutReturnPathWithoutListener: a tenant with a
// return-path domain on a node without a bounce listener is warned about
// at start, once; with the listener, not.
func TestStartWarnsAboutReturnPathWithoutListener(t *testing.T) {
	t.Parallel()
	const warning = "there is no bounce listener"
	rules := copyTree(t, filepath.Join("..", "..", "rules"))
	tenant := "return {\n  sender_domains = { \"negozio-test.it\" },\n  return_path_domain = \"" + returnPath + "\",\n}\n"
	if err := os.WriteFile(filepath.Join(rules, "tenants", "negozio.lua"), []byte(tenant), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bounceListen string
		want         int
	}{{"", 1}, {"127.0.0.1:0", 0}} {
		var logs testlib.Buffer
		n, err := Start(t.Context(), Config{
			Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.example.net", BounceListen: tc.bounceListen,
			ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: rules,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(logs.String(), warning); got != tc.want {
			t.Errorf("bounce listener %q: %q logged %d times, want %d", tc.bounceListen, warning, got, tc.want)
		}
	}
}
