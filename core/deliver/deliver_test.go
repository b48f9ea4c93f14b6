package deliver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
	"corriere/core/queue"
	"corriere/core/smtpclient"
)

// The hosts of the tests, each on its own loopback address, all on one
// port: a receiver that accepts, one that refuses every session with 421,
// and an address where nothing listens.
const (
	goodIP    = "127.0.0.61"
	refuserIP = "127.0.0.62"
	deadIP    = "127.0.0.63"
)

// world is the DNS and the receivers of TestDial.
type world struct {
	resolver *dns.Resolver
	port     int
	good     *mailtest.Receiver
}

func startWorld(t *testing.T) *world {
	t.Helper()
	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd(
		"good.test. 300 IN A "+goodIP,
		"refuser.test. 300 IN A "+refuserIP,
		"dead.test. 300 IN A "+deadIP,
		"v6only.test. 300 IN AAAA ::1",
	)
	r, err := dns.New(dns.Options{Servers: []string{as.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	port := mailtest.FreePort(t, goodIP, refuserIP, deadIP)
	w := &world{resolver: r, port: port}
	w.good = mailtest.Start(t, fmt.Sprintf("%s:%d", goodIP, port), mailtest.Options{Domain: "good.test"})
	mailtest.Start(t, fmt.Sprintf("%s:%d", refuserIP, port), mailtest.Options{
		Greeting: mailtest.Reply(421, "4.3.2", "Too busy"),
	})
	return w
}

// transport returns a Transport of w with short timeouts.
func (w *world) transport(t *testing.T) *Transport {
	t.Helper()
	tr, err := New(Options{Resolver: w.resolver, Port: w.port, Client: smtpclient.Options{
		ConnectTimeout: 2 * time.Second, GreetingTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// target is a delivery to dest.test from 127.0.0.1 via hosts, in order.
func target(hosts ...string) queue.Target {
	mx := &dns.MXResult{Domain: "dest.test"}
	for i, h := range hosts {
		mx.Hosts = append(mx.Hosts, dns.MX{Host: h, Pref: uint16(10 * (i + 1))})
	}
	return queue.Target{Domain: "dest.test", MX: mx, Source: "127.0.0.1", Helo: "out.sender.test"}
}

func TestDial(t *testing.T) {
	t.Parallel()
	w := startWorld(t)
	tr := w.transport(t)
	tests := []struct {
		name  string
		hosts []string
		// wantHost is the host connected to, or the host a DialError names.
		wantHost string
		// wantErr, when set, expects a DialError with this many addresses
		// tried, carrying a server's reply when wantReply.
		wantErr   bool
		wantTried int
		wantReply bool
	}{
		{name: "first host", hosts: []string{"good.test", "dead.test"}, wantHost: "good.test"},
		{name: "dead primary skipped", hosts: []string{"dead.test", "good.test"}, wantHost: "good.test"},
		{name: "refusing primary skipped", hosts: []string{"refuser.test", "good.test"}, wantHost: "good.test"},
		{name: "unknown primary skipped", hosts: []string{"nx.test", "good.test"}, wantHost: "good.test"},
		{name: "a reply beats a network failure", hosts: []string{"dead.test", "refuser.test"},
			wantHost: "refuser.test", wantErr: true, wantTried: 2, wantReply: true},
		{name: "the first network failure stays", hosts: []string{"dead.test", "nx.test"},
			wantHost: "dead.test", wantErr: true, wantTried: 1},
		{name: "no address of the source's family", hosts: []string{"v6only.test"},
			wantHost: "dest.test", wantErr: true, wantTried: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tr.Dial(context.Background(), target(tt.hosts...))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if c.Host() != tt.wantHost {
					t.Errorf("connected to %s, want %s", c.Host(), tt.wantHost)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("Dial connected to %s, want a DialError", c.Host())
			}
			var de *DialError
			if !errors.As(err, &de) {
				t.Fatalf("Dial: %T %v, want a *DialError", err, err)
			}
			var se *smtpclient.Error
			gotReply := errors.As(err, &se) && se.Reply != nil
			if de.Host != tt.wantHost || de.Tried != tt.wantTried || gotReply != tt.wantReply {
				t.Errorf("DialError host %s, tried %d, reply %v; want %s, %d, %v (%v)",
					de.Host, de.Tried, gotReply, tt.wantHost, tt.wantTried, tt.wantReply, err)
			}
		})
	}
}

// TestDialSendsFromTheRoutesSource checks that the session leaves from the
// target's source IP with its HELO name, and that a message goes through.
func TestDialSendsFromTheRoutesSource(t *testing.T) {
	t.Parallel()
	w := startWorld(t)
	c, err := w.transport(t).Dial(context.Background(), target("good.test"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), smtpclient.Envelope{From: "app@sender.test", Rcpts: []smtpclient.Rcpt{{Addr: "a@dest.test"}}},
		[]byte("Subject: hi\r\n\r\nhello\r\n"))
	if err != nil || !res.Outcome(0).Success() {
		t.Fatalf("Send: %v, %v", err, res.Outcome(0))
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	got := w.good.Wait(t, 1, 5*time.Second)
	if got[0].Peer != "127.0.0.1" || got[0].Helo != "out.sender.test" {
		t.Errorf("received from %s with HELO %q, want 127.0.0.1 and out.sender.test", got[0].Peer, got[0].Helo)
	}
}

// brokenTLSServer is an SMTP server on loopback that offers STARTTLS and
// then answers the handshake with plain text, as a broken TLS stack does.
// It takes mail in clear.
type brokenTLSServer struct {
	addr     string
	starttls atomic.Int32 // STARTTLS commands received
	sessions atomic.Int32
}

func startBrokenTLS(t *testing.T, ip string) *brokenTLSServer {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &brokenTLSServer{addr: l.Addr().String()}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *brokenTLSServer) serve(c net.Conn) {
	defer c.Close()
	s.sessions.Add(1)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 tls.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			fmt.Fprint(c, "250-tls.test\r\n250 STARTTLS\r\n")
		case cmd == "STARTTLS":
			s.starttls.Add(1)
			fmt.Fprint(c, "220 Go ahead\r\n")
			fmt.Fprint(c, "this is not a TLS record\r\n")
			return
		case cmd == "QUIT":
			fmt.Fprint(c, "221 Bye\r\n")
			return
		default:
			fmt.Fprint(c, "502 5.5.1 Not in this test\r\n")
		}
	}
}

// TestFailedTLSIsSkippedForAWhile: a host whose STARTTLS handshake fails
// is reached in clear at once, contacted without STARTTLS while TLSMemory
// lasts, and offered STARTTLS again after it.
func TestFailedTLSIsSkippedForAWhile(t *testing.T) {
	t.Parallel()
	const tlsIP = "127.0.0.64"
	s := startBrokenTLS(t, tlsIP)
	_, port, _ := net.SplitHostPort(s.addr)
	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd("tls.test. 300 IN A " + tlsIP)
	r, err := dns.New(dns.Options{Servers: []string{as.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(Options{Resolver: r, Port: p, TLSMemory: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tr.nowFun = func() time.Time { return now }

	steps := []struct {
		name         string
		advance      time.Duration
		wantStartTLS int32 // STARTTLS commands so far
		wantSessions int32 // sessions so far
	}{
		{name: "first contact: STARTTLS fails, then clear", wantStartTLS: 1, wantSessions: 2},
		{name: "within TLSMemory: clear at once", advance: 59 * time.Minute, wantStartTLS: 1, wantSessions: 3},
		{name: "after TLSMemory: STARTTLS again", advance: 2 * time.Minute, wantStartTLS: 2, wantSessions: 5},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		c, err := tr.Dial(context.Background(), queue.Target{Domain: "tls.test",
			MX: &dns.MXResult{Domain: "tls.test", Hosts: []dns.MX{{Host: "tls.test", Pref: 10}}}, Helo: "out.sender.test"})
		if err != nil {
			t.Fatalf("%s: Dial: %v", st.name, err)
		}
		c.Close()
		if got, gotS := s.starttls.Load(), s.sessions.Load(); got != st.wantStartTLS || gotS != st.wantSessions {
			t.Errorf("%s: %d STARTTLS in %d sessions, want %d in %d", st.name, got, gotS, st.wantStartTLS, st.wantSessions)
		}
	}
}
