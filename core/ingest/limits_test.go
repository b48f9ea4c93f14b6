package ingest

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// dialFrom opens a session from the loopback address from (Linux routes
// all of 127/8 to lo, so 127.0.0.2 is a second client) and returns it with
// its greeting.
func dialFrom(t *testing.T, addr, from string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	g, err := readReply(r)
	if err != nil {
		t.Fatalf("no greeting from %s: %v", from, err)
	}
	return c, r, g
}

// send writes one command line and returns the last line of the reply.
func send(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got, err := readReply(r)
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	return got
}

func TestOneClientCannotTakeEverySession(t *testing.T) {
	t.Parallel()
	s, addr, _, col := startServer(t, serverSetup{
		relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		tune:      func(o *Options) { o.MaxSessions, o.MaxSessionsPerIP = 10, 3 },
	})
	for range 3 {
		if _, _, g := dialFrom(t, addr, "127.0.0.1"); !strings.HasPrefix(g, "220") {
			t.Fatalf("session within the per-client cap greeted %q", g)
		}
	}
	if _, _, g := dialFrom(t, addr, "127.0.0.1"); !strings.HasPrefix(g, "421 4.7.0") {
		t.Fatalf("session over the per-client cap greeted %q, want 421 4.7.0", g)
	}
	c, r, g := dialFrom(t, addr, "127.0.0.2")
	if !strings.HasPrefix(g, "220") {
		t.Fatalf("another client greeted %q while the first holds its share", g)
	}
	for _, step := range []struct{ send, want string }{
		{"EHLO other.example", "250"}, {"MAIL FROM:<a@other.example>", "250"}, {"RCPT TO:<b@dest.example>", "250"},
		{"DATA", "354"}, {"Subject: hi\r\n\r\nbody\r\n.", "250"},
	} {
		if got := send(t, c, r, step.send); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%q got %q, want %s", step.send, got, step.want)
		}
	}
	if len(col.metas) != 1 {
		t.Errorf("queue got %d messages, want 1", len(col.metas))
	}
	if n := s.Rejections()["too_many_sessions_per_ip"]; n != 1 {
		t.Errorf("rejections = %v, want one too_many_sessions_per_ip", s.Rejections())
	}
}

func TestSilentClientIsClosedEarly(t *testing.T) {
	_, addr, _, _ := startServer(t, serverSetup{tune: func(o *Options) {
		o.IdleTimeout, o.FirstCommandTimeout = time.Minute, 100*time.Millisecond
	}})
	_, r, _ := dialFrom(t, addr, "127.0.0.1")
	if got, err := readReply(r); err != nil || !strings.HasPrefix(got, "421 4.4.2") {
		t.Fatalf("silent client got %q, %v; want 421 4.4.2 before the idle timeout", got, err)
	}
}

// dataSession opens a relay session up to the 354 of DATA.
func dataSession(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, r, _ := dialFrom(t, addr, "127.0.0.1")
	for _, step := range []struct{ send, want string }{
		{"EHLO client.example", "250"}, {"MAIL FROM:<a@client.example>", "250"},
		{"RCPT TO:<b@dest.example>", "250"}, {"DATA", "354"},
	} {
		if got := send(t, c, r, step.send); !strings.HasPrefix(got, step.want) {
			t.Fatalf("%q got %q, want %s", step.send, got, step.want)
		}
	}
	return c, r
}

func TestSlowSteadyDataIsAccepted(t *testing.T) {
	_, addr, _, col := startServer(t, serverSetup{
		relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		tune:      func(o *Options) { o.IdleTimeout, o.DataTimeout = 200*time.Millisecond, time.Minute },
	})
	c, r := dataSession(t, addr)
	// Ten lines 50 ms apart: the transfer lasts twice the idle timeout,
	// and no read waits longer than a quarter of it.
	c.Write([]byte("Subject: slow\r\n\r\n"))
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		if _, err := c.Write([]byte("a slow but steady line\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := send(t, c, r, "."); !strings.HasPrefix(got, "250") {
		t.Fatalf("slow steady DATA got %q, want 250", got)
	}
	if len(col.metas) != 1 {
		t.Errorf("queue got %d messages, want 1", len(col.metas))
	}
}

func TestDataCutOffWithTemporaryNeutralReply(t *testing.T) {
	for _, tc := range []struct {
		name       string
		idle, data time.Duration
		trickle    bool
	}{
		{"stalled", 200 * time.Millisecond, time.Minute, false},
		{"too slow overall", time.Minute, 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr, _, col := startServer(t, serverSetup{
				relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				tune:      func(o *Options) { o.IdleTimeout, o.DataTimeout = tc.idle, tc.data },
			})
			c, r := dataSession(t, addr)
			c.Write([]byte("Subject: cut\r\n\r\n"))
			done := make(chan struct{})
			defer close(done)
			if tc.trickle {
				go func() {
					for {
						select {
						case <-done:
							return
						case <-time.After(20 * time.Millisecond):
							if _, err := c.Write([]byte("x\r\n")); err != nil {
								return
							}
						}
					}
				}()
			}
			got, err := readReply(r)
			if err != nil || !strings.HasPrefix(got, "451 4.4.2") || strings.Contains(got, "127.0.0.1") {
				t.Fatalf("cut-off DATA got %q, %v; want 451 4.4.2 without addresses", got, err)
			}
			if _, err := r.ReadString('\n'); err == nil {
				t.Error("the session stayed open after the cut-off transfer")
			}
			if len(col.metas) != 0 || s.Rejections()["data_timeout"] != 1 {
				t.Errorf("queue got %d messages, rejections %v; want none and one data_timeout", len(col.metas), s.Rejections())
			}
		})
	}
}
