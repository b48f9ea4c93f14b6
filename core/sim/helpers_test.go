package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/clock"
)

// newClock returns a fake clock that moves only when told.
func newClock() *clock.Fake { return clock.NewFake(time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)) }

// returnRecords route mail for bounces.test (the MTA's bounce and FBL
// domain in these tests) to 127.0.0.1.
var returnRecords = []string{
	"bounces.test. 300 IN MX 10 mx.bounces.test.",
	"mx.bounces.test. 300 IN A 127.0.0.1",
}

// oneMX is a provider with one domain served by mx.<domain> at ip.
func oneMX(name, domain, ip string) Provider {
	return Provider{Name: name, Domains: []Domain{{Name: domain, MX: []MX{{Host: "mx." + domain, Preference: 10, IP: ip}}}}}
}

// startSim starts w and closes it when the test ends.
func startSim(t testing.TB, w *World, opts Options) *Sim {
	t.Helper()
	s, err := Start(context.Background(), w, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// dial connects from source address src to the MX at ip and says EHLO.
// The returned error is the greeting's or EHLO's.
func dial(t testing.TB, s *Sim, ip, src string) (*smtp.Client, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp4", net.JoinHostPort(ip, strconv.Itoa(s.MXPort())))
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = 10 * time.Second
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("mta2.corriere.test"); err != nil {
		return nil, err
	}
	return c, nil
}

// mustDial is dial for connections that must succeed.
func mustDial(t testing.TB, s *Sim, ip, src string) *smtp.Client {
	t.Helper()
	c, err := dial(t, s, ip, src)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", ip, src, err)
	}
	return c
}

// testMessage is a small test message with the given Message-ID and subject.
func testMessage(id, subject string) string {
	return "From: Shop <news@shop.test>\r\nTo: someone\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + id + ">\r\nDate: Wed, 04 Mar 2026 10:00:00 +0000\r\n\r\nHello.\r\n"
}

// send runs one transaction; on failure it resets the session so the
// client can go on.
func send(c *smtp.Client, from string, to []string, msg string) error {
	err := transaction(c, from, to, msg)
	if err != nil {
		_ = c.Reset() // the session may be gone; the caller checks err
	}
	return err
}

func transaction(c *smtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// wantReply checks that err is an SMTP reply with code, enhanced code and a
// text containing fragment.
func wantReply(t testing.TB, err error, code int, enhanced, fragment string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want SMTP reply %d %s", err, code, enhanced)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || got != enhanced || !strings.Contains(se.Message, fragment) {
		t.Fatalf("got %d %s %q, want %d %s containing %q", se.Code, got, se.Message, code, enhanced, fragment)
	}
}

// received is one message that the return receiver accepted.
type received struct {
	from, to, peer string
	data           string
}

// startReceiver runs an SMTP server on 127.0.0.1 that stands for the MTA's
// bounce and FBL listener, and returns its port and what it receives.
func startReceiver(t testing.TB) (int, <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		host, _, _ := net.SplitHostPort(c.Conn().RemoteAddr().String())
		return &receiverSession{peer: host, out: ch}, nil
	}))
	srv.Domain = "mx.bounces.test"
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, ch
}

type receiverSession struct {
	peer     string
	from, to string
	out      chan<- received
}

func (s *receiverSession) Reset()        {}
func (s *receiverSession) Logout() error { return nil }
func (s *receiverSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *receiverSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *receiverSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.out <- received{from: s.from, to: s.to, peer: s.peer, data: string(b)}
	return nil
}
