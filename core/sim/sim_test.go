package sim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"corriere/core/testlib"
)

func TestGreylisting(t *testing.T) {
	tests := []struct {
		name string
		by   string
		// otherSameNet is whether a retry from another address of the same
		// /24 passes once the first address's triplet has waited.
		otherSameNet bool
	}{
		{"by net24", "net24", true},
		{"by ip", "ip", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := oneMX("grey", "grey.test", "127.0.10.1")
			p.Greylist = &Greylist{Delay: Duration(5 * time.Minute), By: tt.by}
			clk := newClock()
			s := startSim(t, &World{Providers: []Provider{p}}, Options{Now: clk.Now})
			to := []string{"user@grey.test"}
			msg := testMessage("g1@shop.test", "hello")

			c := mustDial(t, s, "127.0.10.1", "127.0.0.2")
			wantReply(t, send(c, "news@shop.test", to, msg), 451, "4.7.1", "Greylisted")
			clk.Advance(time.Minute)
			wantReply(t, send(c, "news@shop.test", to, msg), 451, "4.7.1", "Greylisted")

			clk.Advance(5 * time.Minute)
			c3 := mustDial(t, s, "127.0.10.1", "127.0.0.3")
			err := send(c3, "news@shop.test", to, msg)
			if tt.otherSameNet {
				if err != nil {
					t.Fatalf("retry from the same /24: %v", err)
				}
			} else {
				wantReply(t, err, 451, "4.7.1", "Greylisted")
			}
			if err := send(c, "news@shop.test", to, msg); err != nil {
				t.Fatalf("retry after the delay: %v", err)
			}
			st := s.Stats()["grey"]
			wantGrey := 2
			if !tt.otherSameNet {
				wantGrey = 3
			}
			if st.Greylisted != wantGrey || st.Accepted != 4-wantGrey {
				t.Errorf("stats greylisted %d accepted %d, want %d %d", st.Greylisted, st.Accepted, wantGrey, 4-wantGrey)
			}
		})
	}
}

func TestConnectionLimit(t *testing.T) {
	p := oneMX("limited", "limited.test", "127.0.10.1")
	p.MaxConnectionsPerIP = 2
	s := startSim(t, &World{Providers: []Provider{p}}, Options{})

	first := mustDial(t, s, "127.0.10.1", "127.0.0.2")
	mustDial(t, s, "127.0.10.1", "127.0.0.2")
	_, err := dial(t, s, "127.0.10.1", "127.0.0.2")
	wantReply(t, err, 421, "4.7.0", "Too many connections")
	mustDial(t, s, "127.0.10.1", "127.0.0.3") // the limit is per source address

	if err := first.Quit(); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "the closed connection's slot", func() bool {
		c, err := dial(t, s, "127.0.10.1", "127.0.0.2")
		if c != nil {
			c.Close()
		}
		return err == nil
	})
	st := s.Stats()["limited"]
	if st.PeakConnectionsPerIP["127.0.0.2"] != 2 || st.PeakConnectionsPerIP["127.0.0.3"] != 1 {
		t.Errorf("peak connections %v, want 2 for 127.0.0.2 and 1 for 127.0.0.3", st.PeakConnectionsPerIP)
	}
	if st.Rejected[ReasonConnectionLimit] < 1 || st.Connections < 5 {
		t.Errorf("stats %+v, want at least 1 connection_limit rejection of at least 5 connections", st)
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		style    string
		code     int
		enhanced string
		fragment string
		hangsUp  bool
	}{
		{"gmail", 421, "4.7.28", "unusual rate of unsolicited mail originating from your IP address", true},
		{"microsoft", 451, "4.7.500", "Server busy. Please try again later from [127.0.0.2]. (S3150)", false},
		{"yahoo", 421, "4.7.0", "[TSS04] Messages from 127.0.0.2 temporarily deferred due to unexpected volume or user complaints", true},
		{"generic", 421, "4.7.0", "too much mail from [127.0.0.2]", true},
	}
	for _, tt := range tests {
		t.Run(tt.style, func(t *testing.T) {
			p := oneMX(tt.style, tt.style+".test", "127.0.10.1")
			p.Style = tt.style
			p.MessagesPerMinutePerIP = 2
			clk := newClock()
			s := startSim(t, &World{Providers: []Provider{p}}, Options{Now: clk.Now})
			to := []string{"user@" + tt.style + ".test"}

			c := mustDial(t, s, "127.0.10.1", "127.0.0.2")
			for i := range 2 {
				if err := send(c, "news@shop.test", to, testMessage("r"+strconv.Itoa(i)+"@shop.test", "hi")); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			wantReply(t, send(c, "news@shop.test", to, testMessage("r2@shop.test", "hi")), tt.code, tt.enhanced, tt.fragment)
			if err := c.Noop(); (err != nil) != tt.hangsUp {
				t.Errorf("NOOP after the deferral: %v, want the connection closed: %v", err, tt.hangsUp)
			}
			if err := send(mustDial(t, s, "127.0.10.1", "127.0.0.3"), "news@shop.test", to, testMessage("r3@shop.test", "hi")); err != nil {
				t.Errorf("another source address: %v", err)
			}
			clk.Advance(time.Minute)
			if err := send(mustDial(t, s, "127.0.10.1", "127.0.0.2"), "news@shop.test", to, testMessage("r4@shop.test", "hi")); err != nil {
				t.Errorf("a minute later: %v", err)
			}
			if st := s.Stats()[tt.style]; st.RateLimited != 1 || st.Accepted != 4 {
				t.Errorf("stats rate-limited %d accepted %d, want 1 4", st.RateLimited, st.Accepted)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	p := oneMX("strict", "strict.test", "127.0.10.1")
	p.Recipients = Recipients{UnknownPrefix: "unknown", FullPrefix: "full", SpamPrefix: "spam"}
	p.SpamMarker = "XSPAMX"
	p.Blocklist = &Blocklist{IPs: []string{"127.0.0.9"}, At: "rcpt", List: "bl.example.test"}
	s := startSim(t, &World{Providers: []Provider{p}}, Options{})

	tests := []struct {
		name     string
		src      string
		rcpt     string
		subject  string
		code     int
		enhanced string
		fragment string
		reason   string
	}{
		{"unknown user", "127.0.0.2", "unknown.mario@strict.test", "hi", 550, "5.1.1", "User unknown", ReasonUnknownUser},
		{"mailbox full", "127.0.0.2", "Full-anna@strict.test", "hi", 452, "4.2.2", "Mailbox full", ReasonMailboxFull},
		{"spam recipient", "127.0.0.2", "spamtrap@strict.test", "hi", 550, "5.7.1", "spam", ReasonSpam},
		{"spam marker", "127.0.0.2", "luca@strict.test", "XSPAMX offer", 550, "5.7.1", "spam", ReasonSpam},
		{"blocked source", "127.0.0.9", "luca@strict.test", "hi", 554, "5.7.1", "Client host [127.0.0.9] blocked using bl.example.test", ReasonBlocked},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDial(t, s, "127.0.10.1", tt.src)
			err := send(c, "news@shop.test", []string{tt.rcpt}, testMessage("x"+strconv.Itoa(i)+"@shop.test", tt.subject))
			wantReply(t, err, tt.code, tt.enhanced, tt.fragment)
		})
	}
	if err := send(mustDial(t, s, "127.0.10.1", "127.0.0.2"), "news@shop.test", []string{"luca@strict.test"}, testMessage("ok@shop.test", "hi")); err != nil {
		t.Fatalf("a good recipient: %v", err)
	}
	st := s.Stats()["strict"]
	want := map[string]int{ReasonUnknownUser: 1, ReasonMailboxFull: 1, ReasonSpam: 2, ReasonBlocked: 1}
	for reason, n := range want {
		if st.Rejected[reason] != n {
			t.Errorf("rejected[%s] = %d, want %d (all: %v)", reason, st.Rejected[reason], n, st.Rejected)
		}
	}
	if st.Accepted != 1 {
		t.Errorf("accepted %d, want 1", st.Accepted)
	}
}

func TestBlockedAtConnect(t *testing.T) {
	p := oneMX("rbl", "rbl.test", "127.0.10.1")
	p.Blocklist = &Blocklist{IPs: []string{"127.0.0.9"}}
	s := startSim(t, &World{Providers: []Provider{p}}, Options{})

	_, err := dial(t, s, "127.0.10.1", "127.0.0.9")
	wantReply(t, err, 554, "5.7.1", "Service unavailable; Client host [127.0.0.9] blocked using zen.spamhaus.org")
	mustDial(t, s, "127.0.10.1", "127.0.0.2")
	if st := s.Stats()["rbl"]; st.Rejected[ReasonBlocked] != 1 || st.Connections != 2 {
		t.Errorf("stats %+v, want one blocked of two connections", st)
	}
}

// parts returns the content type and body of each part of a
// multipart/report, and the report's own parameters.
func parts(t *testing.T, data string) (map[string]string, map[string]string) {
	t.Helper()
	e, err := message.Read(strings.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" {
		t.Fatalf("content type %q (%v), want multipart/report", mt, err)
	}
	mr := e.MultipartReader()
	out := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		b, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		out[pt] = string(b)
	}
	return out, params
}

func TestAsyncBounce(t *testing.T) {
	port, got := startReceiver(t)
	formats := []string{"dsn", "qmail", "exchange"}
	w := &World{Records: returnRecords}
	for i, f := range formats {
		p := oneMX(f, f+".test", "127.0.10."+strconv.Itoa(i+1))
		p.AsyncBounce = &AsyncBounce{Prefix: "bounce", Delay: Duration(50 * time.Millisecond), Format: f}
		w.Providers = append(w.Providers, p)
	}
	s := startSim(t, w, Options{ReturnPort: port})
	for i, f := range formats {
		c := mustDial(t, s, "127.0.10."+strconv.Itoa(i+1), "127.0.0.2")
		if err := send(c, "sender@bounces.test", []string{"bounce-me@" + f + ".test"}, testMessage("orig-"+f+"@shop.test", "Offerta")); err != nil {
			t.Fatalf("%s: accept-then-bounce should accept: %v", f, err)
		}
	}
	byFormat := map[string]received{}
	for range formats {
		select {
		case r := <-got:
			for i, f := range formats {
				if r.peer == "127.0.10."+strconv.Itoa(i+1) {
					byFormat[f] = r
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("bounces received: %d of %d", len(byFormat), len(formats))
		}
	}
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			r, ok := byFormat[f]
			if !ok {
				t.Fatal("no bounce from the provider's own address")
			}
			if r.from != "" || r.to != "sender@bounces.test" {
				t.Errorf("envelope %q → %q, want the null sender to sender@bounces.test", r.from, r.to)
			}
			if !strings.Contains(r.data, "Message-ID: <orig-"+f+"@shop.test>") {
				t.Errorf("the bounce does not return the original Message-ID:\n%s", r.data)
			}
			if f != "dsn" {
				if !strings.Contains(r.data, "550 5.1.1") || !strings.Contains(r.data, "bounce-me@"+f+".test") {
					t.Errorf("plain-text bounce lacks the diagnostic or recipient:\n%s", r.data)
				}
				return
			}
			ps, params := parts(t, r.data)
			if params["report-type"] != "delivery-status" {
				t.Errorf("report-type %q", params["report-type"])
			}
			status := ps["message/delivery-status"]
			for _, want := range []string{"Final-Recipient: rfc822; bounce-me@dsn.test", "Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1"} {
				if !strings.Contains(status, want) {
					t.Errorf("delivery-status lacks %q:\n%s", want, status)
				}
			}
			if !strings.Contains(ps["text/rfc822-headers"], "orig-dsn@shop.test") {
				t.Errorf("returned headers lack the Message-ID:\n%s", ps["text/rfc822-headers"])
			}
		})
	}
	testlib.WaitFor(t, "bounce counters", func() bool {
		st := s.Stats()
		return st["dsn"].AsyncBounces == 1 && st["qmail"].AsyncBounces == 1 && st["exchange"].AsyncBounces == 1
	})
}

func TestComplaint(t *testing.T) {
	port, got := startReceiver(t)
	p := oneMX("fbl", "fbl.test", "127.0.10.1")
	p.Complaints = &Complaints{Rate: 1, Delay: Duration(10 * time.Millisecond), To: "fbl@bounces.test"}
	s := startSim(t, &World{Providers: []Provider{p}, Records: returnRecords}, Options{ReturnPort: port})

	c := mustDial(t, s, "127.0.10.1", "127.0.0.4")
	if err := send(c, "news@shop.test", []string{"reader@fbl.test"}, testMessage("complained@shop.test", "Sconti")); err != nil {
		t.Fatal(err)
	}
	var r received
	select {
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no complaint received")
	}
	if r.from != "feedback@fbl.test" || r.to != "fbl@bounces.test" {
		t.Errorf("envelope %q → %q", r.from, r.to)
	}
	ps, params := parts(t, r.data)
	if params["report-type"] != "feedback-report" {
		t.Errorf("report-type %q", params["report-type"])
	}
	report := ps["message/feedback-report"]
	for _, want := range []string{"Feedback-Type: abuse", "Version: 1", "Original-Rcpt-To: <reader@fbl.test>", "Original-Mail-From: <news@shop.test>", "Source-IP: 127.0.0.4"} {
		if !strings.Contains(report, want) {
			t.Errorf("feedback-report lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(ps["text/rfc822-headers"], "Message-ID: <complained@shop.test>") {
		t.Errorf("reported headers lack the Message-ID:\n%s", ps["text/rfc822-headers"])
	}
	testlib.WaitFor(t, "complaint counter", func() bool { return s.Stats()["fbl"].Complaints == 1 })
}

func TestComplaintSamplingIsSeeded(t *testing.T) {
	p := oneMX("fbl", "fbl.test", "127.0.10.1")
	p.Complaints = &Complaints{Rate: 0.3, To: "fbl@bounces.test"}
	draws := func(seed int64) string {
		prov, err := newProvider(&Sim{opts: Options{Seed: seed}}, &p, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 64 {
			if prov.accept() {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, other := draws(7), draws(7), draws(8)
	if a != b {
		t.Errorf("same seed, different complaints:\n%s\n%s", a, b)
	}
	if a == other {
		t.Errorf("different seeds, same complaints: %s", a)
	}
	if n := strings.Count(a, "x"); n == 0 || n == 64 {
		t.Errorf("rate 0.3 drew %d complaints of 64", n)
	}
}

func TestNolisting(t *testing.T) {
	p := Provider{Name: "nolisting", Domains: []Domain{{Name: "nolisting.test", MX: []MX{
		{Host: "mx0.nolisting.test", Preference: 10, IP: "127.0.10.1", Dead: true},
		{Host: "mx1.nolisting.test", Preference: 20, IP: "127.0.10.2"},
	}}}}
	s := startSim(t, &World{Providers: []Provider{p}}, Options{})

	ans := query(t, s, "nolisting.test.", mdns.TypeMX)
	if len(ans.Answer) != 2 {
		t.Fatalf("MX answer %v", ans.Answer)
	}
	_, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.10.1", strconv.Itoa(s.MXPort())), 2*time.Second)
	if err == nil {
		t.Fatal("the primary MX answered")
	}
	c := mustDial(t, s, "127.0.10.2", "127.0.0.2")
	if err := send(c, "news@shop.test", []string{"info@nolisting.test"}, testMessage("n@shop.test", "hi")); err != nil {
		t.Fatalf("secondary: %v", err)
	}
	if d := s.Deliveries(); len(d) != 1 || d[0].MXHost != "mx1.nolisting.test" {
		t.Errorf("deliveries %+v", d)
	}
}

func query(t *testing.T, s *Sim, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(4096, false) // the DKIM key does not fit in 512 bytes
	r, _, err := (&mdns.Client{Timeout: 2 * time.Second}).Exchange(q, s.DNSAddr())
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return r
}

func TestDNS(t *testing.T) {
	w := &World{
		Providers: []Provider{oneMX("one", "one.test", "127.0.10.1")},
		NullMX:    []string{"nomail.test"},
		NXDomains: []string{"gmial.test"},
		Records: []string{
			`shop.test. 300 IN TXT "v=spf1 ip4:127.0.0.2/31 -all"`,
			"2.0.0.127.in-addr.arpa. 300 IN PTR mta2.corriere.test.",
		},
	}
	s := startSim(t, w, Options{})
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  string // in the first answer; "" for none
	}{
		{"one.test.", mdns.TypeMX, mdns.RcodeSuccess, "10 mx.one.test."},
		{"mx.one.test.", mdns.TypeA, mdns.RcodeSuccess, "127.0.10.1"},
		{"1.10.0.127.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, "mx.one.test."},
		{"nomail.test.", mdns.TypeMX, mdns.RcodeSuccess, "MX\t0 ."},
		{"gmial.test.", mdns.TypeMX, mdns.RcodeNameError, ""},
		{"shop.test.", mdns.TypeTXT, mdns.RcodeSuccess, "v=spf1 ip4:127.0.0.2/31 -all"},
		{"2.0.0.127.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, "mta2.corriere.test."},
	}
	for _, tt := range tests {
		t.Run(tt.name+mdns.TypeToString[tt.qtype], func(t *testing.T) {
			r := query(t, s, tt.name, tt.qtype)
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if tt.want == "" {
				if len(r.Answer) != 0 {
					t.Errorf("answer %v, want none", r.Answer)
				}
				return
			}
			if len(r.Answer) == 0 || !strings.Contains(r.Answer[0].String(), tt.want) {
				t.Errorf("answer %v, want %q", r.Answer, tt.want)
			}
		})
	}
}

func TestTarpit(t *testing.T) {
	const delay = 150 * time.Millisecond
	p := oneMX("tarpit", "tarpit.test", "127.0.10.1")
	p.Tarpit = Duration(delay)
	s := startSim(t, &World{Providers: []Provider{p}}, Options{})

	start := time.Now()
	c := mustDial(t, s, "127.0.10.1", "127.0.0.2") // greeting and EHLO: two replies
	if got := time.Since(start); got < 2*delay {
		t.Errorf("greeting and EHLO took %v, want at least %v", got, 2*delay)
	}
	start = time.Now()
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	if got := time.Since(start); got < delay {
		t.Errorf("NOOP took %v, want at least %v", got, delay)
	}
}

func TestSTARTTLS(t *testing.T) {
	tlsP := oneMX("tls", "tls.test", "127.0.10.1")
	tlsP.STARTTLS = true
	plain := oneMX("plain", "plain.test", "127.0.10.2")
	s := startSim(t, &World{Providers: []Provider{tlsP, plain}}, Options{})

	if ok, _ := mustDial(t, s, "127.0.10.2", "127.0.0.2").Extension("STARTTLS"); ok {
		t.Error("a provider without starttls offers it")
	}
	if ok, _ := mustDial(t, s, "127.0.10.1", "127.0.0.2").Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	conn, err := net.Dial("tcp4", net.JoinHostPort("127.0.10.1", strconv.Itoa(s.MXPort())))
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClientStartTLS(conn, &tls.Config{RootCAs: pool, ServerName: "mx.tls.test"})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := send(c, "news@shop.test", []string{"a@tls.test"}, testMessage("tls@shop.test", "hi")); err != nil {
		t.Fatal(err)
	}
	d := s.Deliveries()
	if len(d) != 1 || !d[0].TLS || d[0].MessageID != "<tls@shop.test>" || d[0].SourceIP != "127.0.0.1" {
		t.Errorf("deliveries %+v", d)
	}
	if pub := s.Certificate().PublicKeyAlgorithm; pub != x509.ECDSA {
		t.Errorf("certificate key %v, want ECDSA", pub)
	}
}

func TestDeliveries(t *testing.T) {
	p := oneMX("gmail", "gmail.test", "127.0.10.1")
	p.Style = "gmail"
	clk := newClock()
	s := startSim(t, &World{Providers: []Provider{p}}, Options{MaxDeliveries: 2, Now: clk.Now})
	c := mustDial(t, s, "127.0.10.1", "127.0.0.5")
	for i := range 3 {
		if err := send(c, "news@shop.test", []string{"r" + strconv.Itoa(i) + "@gmail.test"}, testMessage("d"+strconv.Itoa(i)+"@shop.test", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	d := s.Deliveries()
	if len(d) != 2 || d[0].Recipient != "r1@gmail.test" || d[1].Recipient != "r2@gmail.test" {
		t.Fatalf("deliveries %+v, want the last two", d)
	}
	got := d[1]
	if got.Provider != "gmail" || got.MXHost != "mx.gmail.test" || got.From != "news@shop.test" || got.SourceIP != "127.0.0.5" ||
		got.BodySize != len("Hello.\r\n") || !bytes.HasPrefix(got.Header, []byte("From: Shop")) ||
		!bytes.HasSuffix(got.Header, []byte("+0000\r\n")) || !got.Time.Equal(clk.Now()) {
		t.Errorf("delivery %+v", got)
	}
}

func TestParallelSimsGetTheirOwnPorts(t *testing.T) {
	w := &World{Providers: []Provider{oneMX("a", "a.test", "127.0.10.1")}}
	a := startSim(t, w, Options{})
	b := startSim(t, w, Options{})
	if a.MXPort() == b.MXPort() {
		t.Fatalf("both simulators on port %d", a.MXPort())
	}
	mustDial(t, a, "127.0.10.1", "127.0.0.2")
	mustDial(t, b, "127.0.10.1", "127.0.0.2")
}

func BenchmarkDelivery(b *testing.B) {
	p := oneMX("bench", "bench.test", "127.0.10.1")
	s := startSim(b, &World{Providers: []Provider{p}}, Options{})
	c := mustDial(b, s, "127.0.10.1", "127.0.0.2")
	msg := testMessage("bench@shop.test", "benchmark")
	b.ReportAllocs()
	for b.Loop() {
		if err := send(c, "news@shop.test", []string{"user@bench.test"}, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCloseRightAfterStart(t *testing.T) {
	w, err := LoadWorld(defaultWorld)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s, err := Start(t.Context(), w, Options{ReturnPort: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}
