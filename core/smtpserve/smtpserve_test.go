package smtpserve

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/netlimit"
)

// backend accepts every message; Data holds a place in the work gate.
type backend struct{ r *Runner }

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{r: b.r}, nil }

type session struct{ r *Runner }

func (s *session) Reset()                               {}
func (s *session) Logout() error                        { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(r io.Reader) error {
	if !s.r.Work.Enter() {
		return &smtp.SMTPError{Code: 421, Message: "shutting down"}
	}
	defer s.r.Work.Leave()
	_, err := io.Copy(io.Discard, r)
	return err
}

func start(t *testing.T, max int) (*Runner, string) {
	t.Helper()
	r := &Runner{MaxSessions: max}
	r.SMTP = smtp.NewServer(&backend{r: r})
	r.SMTP.Domain = "test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r, ln.Addr().String()
}

func greeting(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return c, line
}

func TestSessionsOverTheCapAreRefused(t *testing.T) {
	_, addr := start(t, 1)
	if _, g := greeting(t, addr); !strings.HasPrefix(g, "220") {
		t.Fatalf("first session greeted %q", g)
	}
	if _, g := greeting(t, addr); !strings.HasPrefix(g, "421 4.3.2") {
		t.Fatalf("second session greeted %q, want 421", g)
	}
}

func TestShutdownClosesIdleSessions(t *testing.T) {
	r, addr := start(t, 10)
	c, _ := greeting(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an idle session: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the idle session is still open")
	}
}

func TestServeAfterShutdown(t *testing.T) {
	r := &Runner{MaxSessions: 1}
	r.SMTP = smtp.NewServer(&backend{r: r})
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		ln.Close()
		t.Fatal("Serve after Shutdown is serving")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener is still open")
	}
	if r.Work.Enter() {
		t.Error("work admitted after Shutdown")
	}
}

func TestLogLevel(t *testing.T) {
	var buf strings.Builder
	l := Log{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), Level: slog.LevelDebug}
	l.Printf("hidden %d", 1)
	if buf.Len() != 0 {
		t.Fatalf("a debug message was logged at info: %q", buf.String())
	}
	l.Level = slog.LevelWarn
	l.Println("broken", "pipe")
	if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, `msg="smtp: broken pipe"`) {
		t.Errorf("logged %q", got)
	}
}

func TestSilentSessionClosedAtFirstCommandTimeout(t *testing.T) {
	r := &Runner{MaxSessions: 10, FirstCommandTimeout: 100 * time.Millisecond}
	r.SMTP = smtp.NewServer(&backend{r: r})
	r.SMTP.Domain = "test"
	r.SMTP.ReadTimeout = time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	t.Cleanup(func() { r.Shutdown(context.Background()) })

	// A client that sends a line gets the normal idle timeout.
	active, _ := greeting(t, ln.Addr().String())
	br := bufio.NewReader(active)
	active.Write([]byte("NOOP\r\n"))
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "250") {
		t.Fatalf("NOOP got %q, %v", line, err)
	}
	silent, _ := greeting(t, ln.Addr().String())
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(silent).ReadString('\n'); err != nil || !strings.HasPrefix(line, "421 4.4.2") {
		t.Fatalf("silent session got %q, %v; want 421 4.4.2", line, err)
	}
	active.Write([]byte("NOOP\r\n"))
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "250") {
		t.Fatalf("the active session was closed too: %q, %v", line, err)
	}
}

func TestSessionsOverThePerClientCapAreRefused(t *testing.T) {
	r := &Runner{MaxSessions: 10, MaxSessionsPerIP: 1}
	r.SMTP = smtp.NewServer(&backend{r: r})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	from := func(ip string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if g := from("127.0.0.1"); !strings.HasPrefix(g, "220") {
		t.Fatalf("first session greeted %q", g)
	}
	if g := from("127.0.0.1"); !strings.HasPrefix(g, "421 4.7.0") {
		t.Fatalf("second session of the client greeted %q, want 421 4.7.0", g)
	}
	if g := from("127.0.0.2"); !strings.HasPrefix(g, "220") {
		t.Fatalf("another client greeted %q", g)
	}
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, nil))
	var rl refusalLog
	t0 := time.Unix(1e9, 0)
	client := netip.MustParseAddr("192.0.2.1")
	for i := range 5 {
		rl.log(l, netlimit.TooManyFromClient, client, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	rl.log(l, netlimit.TooManySessions, client, t0)
	rl.log(l, netlimit.TooManyFromClient, client, t0.Add(1500*time.Millisecond))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "unlogged_since_last=4") {
		t.Errorf("logged:\n%s\nwant 3 lines, the last counting 4 unlogged refusals", buf.String())
	}
}

func TestCloseAfterReply(t *testing.T) {
	server, client := net.Pipe()
	c := &Conn{Conn: server}
	defer client.Close()
	go func() {
		c.Write([]byte("250 ok\r\n"))
		c.CloseAfterReply()
		c.Write([]byte("421 4.7.0 bye\r\n"))
	}()
	r := bufio.NewReader(client)
	for _, want := range []string{"250 ok\r\n", "421 4.7.0 bye\r\n"} {
		if line, err := r.ReadString('\n'); line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Error("the connection is still open after the reply")
	}
}
