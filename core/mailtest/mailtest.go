// Package mailtest holds the loopback fixtures shared by Corriere's tests: an
// SMTP receiver (a real go-smtp server) whose answers a test scripts, and
// helpers to find ports free on several 127.0.0.x addresses at once.
//
// For realistic provider behaviour (greylisting, throttling, asynchronous
// bounces) use core/sim; this package is for tests that need one precise
// answer at one precise step.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one message a Receiver accepted.
type Received struct {
	From string
	To   []string
	Data []byte
	// Peer is the client's IP address, as the receiver saw it.
	Peer string
	// Helo is the name the client announced.
	Helo string
	// At is when DATA completed.
	At time.Time
	// TLS says whether the message came over STARTTLS.
	TLS bool
}

// Options script a Receiver. Nil hooks accept.
type Options struct {
	// Rcpt answers RCPT TO; n counts earlier RCPTs for the same address
	// (0 on the first). Return a *smtp.SMTPError to refuse.
	Rcpt func(rcpt string, n int) error
	// Data answers the end of DATA; n counts earlier DATA completions.
	Data func(data []byte, n int) error
	// Greeting, when set, refuses every session at EHLO with this error.
	Greeting error
	// Domain is the name the server announces. The default is the address.
	Domain string
	// CountOnly keeps no message data, only counts (for benchmarks).
	CountOnly bool
	// TLSConfig, when set, makes the receiver offer STARTTLS with its
	// certificates. The default value nil offers no STARTTLS.
	TLSConfig *tls.Config
	// RefuseFrom answers every RCPT from a client IP in the map with that
	// IP's error; changing the map while the receiver runs is not safe, use
	// SetRefuseFrom.
	RefuseFrom map[string]error
}

// Receiver is a scripted SMTP server on loopback.
type Receiver struct {
	// Addr is "ip:port".
	Addr string

	opts  Options
	srv   *smtp.Server
	mu    sync.Mutex
	msgs  []Received
	rcpts map[string]int
	datas int
	conns int
	peak  int
	open  int
	// openFrom and peakFrom count sessions per client IP.
	openFrom, peakFrom map[string]int
	// sessions are every session's span, for PeakConnectionsSince.
	sessions []*session
	ch       chan struct{}
	// counted is the number of recipients accepted in CountOnly mode.
	counted int
}

// Start starts a receiver on addr ("127.0.0.2:0" picks a port) and stops it
// when the test ends.
func Start(t testing.TB, addr string, opts Options) *Receiver {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("mailtest: listen %s: %v", addr, err)
	}
	r := &Receiver{Addr: l.Addr().String(), opts: opts, rcpts: map[string]int{}, ch: make(chan struct{}, 1),
		openFrom: map[string]int{}, peakFrom: map[string]int{}}
	r.srv = smtp.NewServer(r)
	r.srv.Domain = opts.Domain
	if r.srv.Domain == "" {
		r.srv.Domain = r.Addr
	}
	r.srv.AllowInsecureAuth = true
	r.srv.EnableDSN = true
	r.srv.ReadTimeout = 30 * time.Second
	r.srv.WriteTimeout = 30 * time.Second
	r.srv.ErrorLog = discardLogger{}
	r.srv.TLSConfig = opts.TLSConfig
	go func() { _ = r.srv.Serve(byeListener{l}) }() // returns when the server closes
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// Messages returns what the receiver has accepted so far.
func (r *Receiver) Messages() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.msgs...)
}

// Recipients returns how many recipients the receiver has accepted.
func (r *Receiver) Recipients() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.counted
	for _, m := range r.msgs {
		n += len(m.To)
	}
	return n
}

// PeakConnections returns the most concurrent sessions seen.
func (r *Receiver) PeakConnections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}

// SetRefuseFrom replaces the RefuseFrom map.
func (r *Receiver) SetRefuseFrom(m map[string]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.RefuseFrom = m
}

// PeakConnectionsFrom returns the most concurrent sessions seen from one
// client IP.
func (r *Receiver) PeakConnectionsFrom(ip string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peakFrom[ip]
}

// PeakConnectionsSince returns the most concurrent sessions seen from
// since on, counting those already open then.
func (r *Receiver) PeakConnectionsSince(since time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	type change struct {
		at    time.Time
		delta int
	}
	var changes []change
	for _, s := range r.sessions {
		if !s.closed.IsZero() && !s.closed.After(since) {
			continue
		}
		changes = append(changes, change{s.opened, 1})
		if !s.closed.IsZero() {
			changes = append(changes, change{s.closed, -1})
		}
	}
	// Closings first at equal times: a session is over before the next
	// one the same instant.
	slices.SortFunc(changes, func(a, b change) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	open, peak := 0, 0
	for _, c := range changes {
		open += c.delta
		peak = max(peak, open)
	}
	return peak
}

// Connections returns how many sessions were opened.
func (r *Receiver) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// Wait waits until the receiver holds at least n messages, failing the test
// after timeout.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if msgs := r.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("mailtest: %s got %d messages, want %d within %v", r.Addr, len(r.Messages()), n, timeout)
		}
	}
}

// Helos returns the EHLO names of the sessions so far, in order.
func (r *Receiver) Helos() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.sessions))
	for i, s := range r.sessions {
		out[i] = s.helo
	}
	return out
}

// NewSession implements smtp.Backend.
func (r *Receiver) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if r.opts.Greeting != nil {
		return nil, r.opts.Greeting
	}
	host, _, _ := net.SplitHostPort(c.Conn().RemoteAddr().String())
	r.mu.Lock()
	r.conns++
	r.open++
	r.peak = max(r.peak, r.open)
	r.openFrom[host]++
	r.peakFrom[host] = max(r.peakFrom[host], r.openFrom[host])
	r.mu.Unlock()
	s := &session{r: r, conn: c, peer: host, helo: c.Hostname(), opened: time.Now()}
	r.mu.Lock()
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	if bc, ok := c.Conn().(*byeConn); ok {
		bc.bye.Store(s)
	}
	return s, nil
}

type session struct {
	r     *Receiver
	conn  *smtp.Conn
	peer  string
	helo  string
	from  string
	to    []string
	ended sync.Once
	// opened and closed (zero while open) are the session's span, guarded
	// by r.mu.
	opened, closed time.Time
}

// tls reports whether the session is under TLS.
func (s *session) tls() bool {
	_, ok := s.conn.TLSConnectionState()
	return ok
}

// end stops counting the session as open: when the server says goodbye
// (221, before the client can read it and open the next connection) or,
// for a session that ends otherwise, at Logout.
func (s *session) end() {
	s.ended.Do(func() {
		s.r.mu.Lock()
		s.r.open--
		s.r.openFrom[s.peer]--
		s.closed = time.Now()
		s.r.mu.Unlock()
	})
}

func (s *session) Reset() { s.from, s.to = "", nil }
func (s *session) Logout() error {
	s.end()
	return nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	n := s.r.rcpts[to]
	s.r.rcpts[to]++
	refuse := s.r.opts.RefuseFrom[s.peer]
	s.r.mu.Unlock()
	if refuse != nil {
		return refuse
	}
	if s.r.opts.Rcpt != nil {
		if err := s.r.opts.Rcpt(to, n); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	data, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	n := s.r.datas
	s.r.datas++
	s.r.mu.Unlock()
	if s.r.opts.Data != nil {
		if err := s.r.opts.Data(data, n); err != nil {
			return err
		}
	}
	s.r.mu.Lock()
	if s.r.opts.CountOnly {
		s.r.counted += len(s.to)
	} else {
		s.r.msgs = append(s.r.msgs, Received{From: s.from, To: s.to, Data: bytes.Clone(data), Peer: s.peer, Helo: s.helo, At: time.Now(), TLS: s.tls()})
	}
	s.r.mu.Unlock()
	select {
	case s.r.ch <- struct{}{}:
	default:
	}
	return nil
}

// Reply returns an SMTP error for a scripted answer, e.g.
// Reply(550, "5.1.1", "no such user").
func Reply(code int, enhanced, text string) error {
	e := &smtp.SMTPError{Code: code, Message: text}
	if enhanced != "" {
		var a, b, c int
		if _, err := fmt.Sscanf(enhanced, "%d.%d.%d", &a, &b, &c); err == nil {
			e.EnhancedCode = smtp.EnhancedCode{a, b, c}
		}
	}
	return e
}

// FreePort returns a TCP port free on every given loopback IP, so that one
// MX port can serve hosts on several addresses.
func FreePort(t testing.TB, ips ...string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("mailtest: listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		var held []net.Listener
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l2)
		}
		l.Close()
		for _, h := range held {
			h.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal(errors.New("mailtest: no port free on all addresses"))
	return 0
}

// byeListener hands the server connections that end their session's
// count when the server writes its 221 reply to QUIT. go-smtp calls Logout
// only after that reply is on the wire, so a client that reads it and opens
// its next connection at once would otherwise be seen holding both.
type byeListener struct{ net.Listener }

func (l byeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &byeConn{Conn: c}, nil
}

// byeConn is a server connection that knows its session.
type byeConn struct {
	net.Conn
	bye atomic.Pointer[session]
}

// Write ends the session's count before a 221 reply leaves: go-smtp writes
// each reply with one Write, and 221 is only its answer to QUIT.
func (c *byeConn) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("221 ")) {
		if s := c.bye.Load(); s != nil {
			s.end()
		}
	}
	return c.Conn.Write(p)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
