package deliver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/dane"
	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
	"corriere/core/mtasts"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/reply"
	"corriere/core/smtpclient"
	"corriere/core/testlib"
	"corriere/core/tlsrpt"
)

// The MX hosts of the TLS tests, each on its own loopback address: one
// whose STARTTLS an attacker strips, one with a certificate valid for its
// name, and one whose certificate does not match its TLSA record.
const (
	strippedIP = "127.0.0.71"
	validIP    = "127.0.0.72"
	wrongIP    = "127.0.0.73"
)

// reports collects the TLS-RPT results of a transport.
type reports struct {
	mu sync.Mutex
	rs []tlsrpt.Result
}

func (r *reports) Record(res tlsrpt.Result) {
	r.mu.Lock()
	r.rs = append(r.rs, res)
	r.mu.Unlock()
}

func (r *reports) all() []tlsrpt.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tlsrpt.Result(nil), r.rs...)
}

// tlsWorld is DNS with MTA-STS and DANE domains, their policy server and
// their receivers.
type tlsWorld struct {
	tr                     *Transport
	stripped, valid, wrong *mailtest.Receiver
	reports                *reports
}

func startTLSWorld(t *testing.T) *tlsWorld {
	t.Helper()
	roots := x509.NewCertPool()
	certFor := func(hosts ...string) tls.Certificate {
		c, _ := testlib.Certificate(t, hosts...)
		roots.AddCert(c.Leaf)
		return c
	}
	validCert := certFor("mx.valid.test", "mx.dane-ok.test")
	wrongCert := certFor("mx.dane.test")
	published, _ := testlib.Certificate(t, "mx.dane.test") // what the TLSA record names
	policyCert := certFor("mta-sts.enforce.test", "mta-sts.testing.test", "mta-sts.valid.test")

	policies := map[string]string{
		"enforce.test": "version: STSv1\nmode: enforce\nmx: mx.enforce.test\nmax_age: 86400\n",
		"valid.test":   "version: STSv1\nmode: enforce\nmx: *.valid.test\nmax_age: 86400\n",
		"testing.test": "version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 86400\n",
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		body, ok := policies[strings.TrimPrefix(host, "mta-sts.")]
		if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(rw, body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{policyCert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, httpsPort, _ := net.SplitHostPort(srv.Listener.Addr().String())

	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	spki := func(c tls.Certificate) string {
		h := sha256.Sum256(c.Leaf.RawSubjectPublicKeyInfo)
		return "3 1 1 " + hex.EncodeToString(h[:])
	}
	as.MustAdd(
		"mx.enforce.test. 300 IN A "+strippedIP,
		"mx.testing.test. 300 IN A "+strippedIP,
		"mx.plain.test. 300 IN A "+strippedIP,
		"mx.valid.test. 300 IN A "+validIP,
		"mx.dane-ok.test. 300 IN A "+validIP,
		"mx.dane.test. 300 IN A "+wrongIP,
		`_mta-sts.enforce.test. 300 IN TXT "v=STSv1; id=1"`,
		`_mta-sts.testing.test. 300 IN TXT "v=STSv1; id=1"`,
		`_mta-sts.valid.test. 300 IN TXT "v=STSv1; id=1"`,
		"mta-sts.enforce.test. 300 IN A 127.0.0.1",
		"mta-sts.testing.test. 300 IN A 127.0.0.1",
		"mta-sts.valid.test. 300 IN A 127.0.0.1",
		"dane.test. 300 IN MX 10 mx.dane.test.",
		"dane-ok.test. 300 IN MX 10 mx.dane-ok.test.",
		"_25._tcp.mx.dane.test. 300 IN TLSA "+spki(published),
		"_25._tcp.mx.dane-ok.test. 300 IN TLSA "+spki(validCert),
	)
	for _, n := range []string{"dane.test", "dane-ok.test", "_25._tcp.mx.dane.test", "_25._tcp.mx.dane-ok.test"} {
		as.SetSecure(n, true)
	}
	res, err := dns.New(dns.Options{Servers: []string{as.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(httpsPort)
	sts, err := mtasts.New(mtasts.Options{Resolver: res, RootCAs: roots, Port: port, FetchTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dr, err := dane.New([]string{as.Addr}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	mxPort := mailtest.FreePort(t, strippedIP, validIP, wrongIP)
	w := &tlsWorld{reports: &reports{}}
	w.stripped = mailtest.Start(t, fmt.Sprintf("%s:%d", strippedIP, mxPort), mailtest.Options{Domain: "mx.enforce.test"})
	w.valid = mailtest.Start(t, fmt.Sprintf("%s:%d", validIP, mxPort), mailtest.Options{Domain: "mx.valid.test",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{validCert}}})
	w.wrong = mailtest.Start(t, fmt.Sprintf("%s:%d", wrongIP, mxPort), mailtest.Options{Domain: "mx.dane.test",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{wrongCert}}})
	w.tr, err = New(Options{Resolver: res, Port: mxPort, MTASTS: sts, DANE: dr, Reporter: w.reports,
		Client: smtpclient.Options{
			ConnectTimeout: 2 * time.Second, GreetingTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second,
			TLSConfig: &tls.Config{RootCAs: roots},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// tlsTargetFor is a delivery to domain via its one MX host under policy p.
func tlsTargetFor(domain, host string, p policy.TLSPolicy) queue.Target {
	return queue.Target{Domain: domain, MX: &dns.MXResult{Domain: domain, Hosts: []dns.MX{{Host: host, Pref: 10}}},
		Source: "127.0.0.1", Helo: "out.sender.test", TLS: p}
}

// send delivers one message over c and fails the test unless it is
// accepted.
func send(t *testing.T, c queue.Conn, rcpt string) {
	t.Helper()
	res, err := c.Send(context.Background(), smtpclient.Envelope{From: "a@sender.test", Rcpts: []smtpclient.Rcpt{{Addr: rcpt}}}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err != nil || !res.Outcome(0).Success() {
		t.Fatalf("Send: %v, %v", res.Outcome(0), err)
	}
}

func TestTLSPolicies(t *testing.T) {
	w := startTLSWorld(t)
	for _, tc := range []struct {
		name         string
		domain, host string
		policy       policy.TLSPolicy
		// wantStatus is the enhanced status of the deferral, "" when the
		// dial must succeed; wantTLS whether the session is encrypted.
		wantStatus string
		wantTLS    bool
		// wantReport is the failure reported to TLS-RPT ("" for success,
		// "-" for no report).
		wantReport string
		wantType   string
	}{
		{"enforce, STARTTLS stripped", "enforce.test", "mx.enforce.test", "", "4.7.10", false, tlsrpt.ResultStartTLSNotSupported, tlsrpt.PolicySTS},
		{"enforce, MX not in the policy", "enforce.test", "mx.plain.test", "", "4.7.5", false, tlsrpt.ResultValidationFailure, tlsrpt.PolicySTS},
		{"enforce, valid certificate", "valid.test", "mx.valid.test", "", "", true, "", tlsrpt.PolicySTS},
		{"testing, STARTTLS stripped: delivered, reported", "testing.test", "mx.testing.test", "", "", false, tlsrpt.ResultStartTLSNotSupported, tlsrpt.PolicySTS},
		{"testing enforced by the route", "testing.test", "mx.testing.test", policy.TLSMTASTS, "4.7.10", false, tlsrpt.ResultStartTLSNotSupported, tlsrpt.PolicySTS},
		{"DANE, certificate does not match TLSA", "dane.test", "mx.dane.test", "", "4.7.5", false, tlsrpt.ResultTLSAInvalid, tlsrpt.PolicyTLSA},
		{"DANE, match", "dane-ok.test", "mx.dane-ok.test", "", "", true, "", tlsrpt.PolicyTLSA},
		{"DANE over MTA-STS for the same host", "dane-ok.test", "mx.dane-ok.test", policy.TLSDANE, "", true, "", tlsrpt.PolicyTLSA},
		{"route requires DANE, domain has none", "plain.test", "mx.plain.test", policy.TLSDANE, "4.7.5", false, "-", ""},
		{"route requires TLS, STARTTLS stripped", "plain.test", "mx.plain.test", policy.TLSRequired, "4.7.10", false, "-", ""},
		{"route requires MTA-STS, domain has none", "plain.test", "mx.plain.test", policy.TLSMTASTS, "4.7.5", false, "-", ""},
		{"no policy: opportunistic", "plain.test", "mx.plain.test", "", "", false, "-", ""},
		{"opportunistic ignores DANE", "dane.test", "mx.dane.test", policy.TLSOpportunistic, "", true, "-", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.reports.all())
			c, err := w.tr.Dial(context.Background(), tlsTargetFor(tc.domain, tc.host, tc.policy))
			if tc.wantStatus != "" {
				if err == nil {
					c.Close()
					t.Fatalf("Dial connected to %s, want a deferral %s", c.Host(), tc.wantStatus)
				}
				r := reply.From(err)
				var se *smtpclient.Error
				if r == nil || r.Code != 451 || r.EffectiveStatus().String() != tc.wantStatus || !errors.As(err, &se) || se.Stage != smtpclient.StageStartTLS {
					t.Fatalf("Dial: %v; want a 451 %s at starttls", err, tc.wantStatus)
				}
				if !strings.Contains(r.String(), "not sent in clear") {
					t.Errorf("reply %q does not say the mail waits", r)
				}
				var pe *PolicyError
				if !errors.As(err, &pe) || strings.Count(err.Error(), "TLS policy") != 1 {
					t.Errorf("Dial: %v; want one PolicyError, named once", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if got := c.(*conn).encrypted; got != tc.wantTLS {
					t.Errorf("session encrypted = %v, want %v", got, tc.wantTLS)
				}
			}
			got := w.reports.all()[before:]
			if tc.wantReport == "-" {
				if len(got) != 0 {
					t.Errorf("reported %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0].Failure != tc.wantReport || got[0].PolicyType != tc.wantType || got[0].Domain != tc.domain || got[0].MXHost != tc.host {
				t.Errorf("reported %+v, want one %s result %q for %s", got, tc.wantType, tc.wantReport, tc.host)
			}
		})
	}
}

// TestNothingInClearUnderEnforce delivers to an enforce domain whose MX
// stops offering STARTTLS and to a testing domain on the same host: the
// first gets nothing, the second gets its mail, and an open session in
// clear is never reused for the enforce domain.
func TestNothingInClearUnderEnforce(t *testing.T) {
	w := startTLSWorld(t)
	ctx := context.Background()
	c, err := w.tr.Dial(ctx, tlsTargetFor("testing.test", "mx.testing.test", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, "x@testing.test")
	if c.Serves(ctx, tlsTargetFor("enforce.test", "mx.testing.test", "")) {
		t.Error("a session in clear would carry mail for an enforce domain")
	}
	if !c.Serves(ctx, tlsTargetFor("plain.test", "mx.testing.test", "")) {
		t.Error("a session in clear refused mail for a domain without a policy")
	}
	if _, err := w.tr.Dial(ctx, tlsTargetFor("enforce.test", "mx.enforce.test", "")); err == nil {
		t.Fatal("Dial to the enforce domain's stripped MX succeeded")
	}
	msgs := w.stripped.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "x@testing.test" || msgs[0].TLS {
		t.Fatalf("the stripped MX got %+v; want the testing domain's message only, in clear", msgs)
	}
	if n := len(w.wrong.Messages()); n != 0 {
		t.Fatalf("the mismatching DANE MX got %d messages", n)
	}
}

func TestDANESessionReuse(t *testing.T) {
	w := startTLSWorld(t)
	ctx := context.Background()
	c, err := w.tr.Dial(ctx, tlsTargetFor("dane-ok.test", "mx.dane-ok.test", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, c, "x@dane-ok.test")
	if msgs := w.valid.Messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("the DANE MX got %+v, want one message over TLS", msgs)
	}
	// valid.test's MTA-STS policy needs a certificate valid for the host
	// under the authorities: a DANE-authenticated session does not prove
	// it, so it is not reused.
	if c.Serves(ctx, tlsTargetFor("valid.test", "mx.dane-ok.test", "")) {
		t.Error("a DANE session would carry mail for an MTA-STS domain whose mx patterns do not name the host")
	}
	if !c.Serves(ctx, tlsTargetFor("plain.test", "mx.dane-ok.test", "")) {
		t.Error("a DANE session refused mail for a domain without a policy")
	}
}
