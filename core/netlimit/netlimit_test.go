package netlimit

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs l's accept loop; admitted connections arrive on the channel.
func serve(t *testing.T, l *Listener) <-chan net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Listener = ln
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return accepted
}

// dialFrom connects to l from the loopback address from (Linux routes all
// of 127/8 to lo, so 127.0.0.2 is a second client).
func dialFrom(t *testing.T, l *Listener, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusal reads the line a refused connection gets.
func refusal(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no refusal: read %q, %v", line, err)
	}
	return line
}

func admitted(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("a connection within the limits was not accepted")
		return nil
	}
}

// recorder records the refusals.
type recorder struct {
	mu      sync.Mutex
	reasons []Reason
	clients []netip.Addr
}

func (r *recorder) refused(reason Reason, client netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reasons = append(r.reasons, reason)
	r.clients = append(r.clients, client)
}

func (r *recorder) last() (Reason, netip.Addr, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reasons) == 0 {
		return "", netip.Addr{}, 0
	}
	return r.reasons[len(r.reasons)-1], r.clients[len(r.clients)-1], len(r.reasons)
}

func TestListenerRefusesBeyondMax(t *testing.T) {
	var refused atomic.Int32
	l := &Listener{Max: 2, Refusal: "421 busy\r\n", OnRefuse: func(Reason, netip.Addr) { refused.Add(1) }}
	accepted := serve(t, l)
	dialFrom(t, l, "127.0.0.1")
	dialFrom(t, l, "127.0.0.1")
	first, second := admitted(t, accepted), admitted(t, accepted)
	if line := refusal(t, dialFrom(t, l, "127.0.0.1")); !strings.HasPrefix(line, "421") {
		t.Fatalf("third connection read %q; want the refusal", line)
	}
	if refused.Load() != 1 || l.Active() != 2 {
		t.Errorf("refused %d, active %d; want 1 and 2", refused.Load(), l.Active())
	}
	first.Close()
	first.Close() // a second Close gives back nothing more
	dialFrom(t, l, "127.0.0.1")
	admitted(t, accepted).Close()
	second.Close()
	if l.Active() != 0 {
		t.Errorf("active %d after every admitted connection closed", l.Active())
	}
}

func TestListenerLimitsEachClient(t *testing.T) {
	var rec recorder
	l := &Listener{Max: 10, PerClient: 2, Refusal: "421 busy\r\n", ClientRefusal: "421 4.7.0 you\r\n", OnRefuse: rec.refused}
	accepted := serve(t, l)
	for range 2 {
		dialFrom(t, l, "127.0.0.1")
		admitted(t, accepted)
	}
	if line := refusal(t, dialFrom(t, l, "127.0.0.1")); line != "421 4.7.0 you\r\n" {
		t.Fatalf("third connection from one client read %q", line)
	}
	if reason, ip, n := rec.last(); reason != TooManyFromClient || ip != netip.MustParseAddr("127.0.0.1") || n != 1 {
		t.Errorf("refusal recorded as %s from %s (%d); want %s from 127.0.0.1", reason, ip, n, TooManyFromClient)
	}
	// Another client still gets in while the first holds its share.
	dialFrom(t, l, "127.0.0.2")
	admitted(t, accepted)
}

func TestListenerLimitsClientRate(t *testing.T) {
	var rec recorder
	now := time.Unix(1e9, 0)
	var mu sync.Mutex
	l := &Listener{Max: 10, Rate: 1, Burst: 2, Refusal: "421 busy\r\n", ClientRefusal: "421 4.7.0 slow down\r\n",
		OnRefuse: rec.refused, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	accepted := serve(t, l)
	for range 2 {
		dialFrom(t, l, "127.0.0.1")
		admitted(t, accepted).Close()
	}
	if line := refusal(t, dialFrom(t, l, "127.0.0.1")); line != "421 4.7.0 slow down\r\n" {
		t.Fatalf("connection over the burst read %q", line)
	}
	if reason, _, _ := rec.last(); reason != ClientRateExceeded {
		t.Errorf("refusal recorded as %s, want %s", reason, ClientRateExceeded)
	}
	dialFrom(t, l, "127.0.0.2")
	admitted(t, accepted)
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	dialFrom(t, l, "127.0.0.1")
	admitted(t, accepted)
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
	} {
		if got := ClientKey(netip.MustParseAddr(tc.ip)); got.String() != tc.want {
			t.Errorf("ClientKey(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}
