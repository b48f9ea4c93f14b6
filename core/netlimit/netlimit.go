// Package netlimit bounds the connections a server holds at once: a
// listener that answers the ones beyond its limits with a one-line reply
// and closes them, so that a flood of clients cannot exhaust descriptors
// or memory, and one client cannot take the places of every other.
//
// Three limits apply, in this order: the connection rate of one client (a
// token bucket), the connections one client holds open at once, and the
// connections open at once in all. A client is an IPv4 address or an IPv6
// /64, the block one subscriber usually gets. Loopback and relay networks
// are clients like any other: a local process can flood as well as a remote
// one, and the limits are configurable for the setups that need more.
package netlimit

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Reason says which limit refused a connection.
type Reason string

// Reasons of a refusal; they are also counter names.
const (
	// TooManySessions: the listener holds Max connections already.
	TooManySessions Reason = "too_many_sessions"
	// TooManyFromClient: the client holds PerClient connections already.
	TooManyFromClient Reason = "too_many_sessions_per_ip"
	// ClientRateExceeded: the client opened connections faster than Rate.
	ClientRateExceeded Reason = "connection_rate"
)

// Listener wraps a net.Listener and admits at most Max connections at
// once, at most PerClient of them from one client, opened at most at Rate
// per client.
type Listener struct {
	net.Listener
	// Max is the most connections open at once.
	Max int64
	// PerClient is the most connections one client holds open at once; 0
	// means no limit per client.
	PerClient int
	// Rate is how many connections per second one client may open on
	// average; 0 means no limit. Burst more may be opened at once.
	Rate float64
	// Burst is how many connections a client may open in a quick
	// succession before Rate applies. It is at least 1.
	Burst int
	// Refusal is written to each connection refused as over Max
	// ("421 ...\r\n").
	Refusal string
	// ClientRefusal is written to each connection refused as over
	// PerClient or Rate; empty means Refusal.
	ClientRefusal string
	// OnRefuse, when set, is called for each connection refused.
	OnRefuse func(reason Reason, client netip.Addr)
	// Now is the clock of the rate limit. The default value is time.Now.
	Now func() time.Time

	mu        sync.Mutex
	active    int64
	clients   map[netip.Prefix]*client
	lastSweep time.Time
}

// client is what the listener knows of one client.
type client struct {
	active int
	tokens float64
	last   time.Time
}

// sweepAbove is the number of known clients above which the ones with
// nothing to remember are forgotten (at most once a second).
const sweepAbove = 1024

// Accept returns the next connection within the limits; connections beyond
// them get the Refusal and are closed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		key := ClientKey(ip)
		if reason, ok := l.admit(key); !ok {
			l.refuse(c, reason, ip)
			continue
		}
		return &counted{Conn: c, l: l, key: key}, nil
	}
}

// admit takes a place for a connection of the client key, or says which
// limit refuses it.
func (l *Listener) admit(key netip.Prefix) (Reason, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients = map[netip.Prefix]*client{}
	}
	if len(l.clients) > sweepAbove && now.Sub(l.lastSweep) > time.Second {
		l.sweep(now)
	}
	cl := l.clients[key]
	if cl == nil {
		cl = &client{tokens: float64(l.burst()), last: now}
		l.clients[key] = cl
	}
	if l.Rate > 0 {
		l.refill(cl, now)
		if cl.tokens < 1 {
			return ClientRateExceeded, false
		}
		cl.tokens--
	}
	if l.PerClient > 0 && cl.active >= l.PerClient {
		return TooManyFromClient, false
	}
	if l.active >= l.Max {
		return TooManySessions, false
	}
	cl.active++
	l.active++
	return "", true
}

func (l *Listener) burst() int { return max(l.Burst, 1) }

// refill adds the tokens earned since the client's last connection.
func (l *Listener) refill(cl *client, now time.Time) {
	if d := now.Sub(cl.last); d > 0 {
		cl.tokens = min(float64(l.burst()), cl.tokens+d.Seconds()*l.Rate)
	}
	cl.last = now
}

// sweep forgets the clients with no connection open and a full bucket:
// remembering them changes nothing.
func (l *Listener) sweep(now time.Time) {
	l.lastSweep = now
	for k, cl := range l.clients {
		if cl.active > 0 {
			continue
		}
		if l.Rate > 0 {
			l.refill(cl, now)
			if cl.tokens < float64(l.burst()) {
				continue
			}
		}
		delete(l.clients, k)
	}
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if cl := l.clients[key]; cl != nil {
		cl.active--
		if cl.active == 0 && l.Rate == 0 {
			delete(l.clients, key)
		}
	}
}

func (l *Listener) refuse(c net.Conn, reason Reason, ip netip.Addr) {
	if l.OnRefuse != nil {
		l.OnRefuse(reason, ip)
	}
	msg := l.Refusal
	if reason != TooManySessions && l.ClientRefusal != "" {
		msg = l.ClientRefusal
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte(msg)) // best effort before closing
	c.Close()
}

func (l *Listener) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Active returns how many admitted connections are open.
func (l *Listener) Active() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// remoteIP is the client's address, or the zero address for connections
// that have none (Unix sockets).
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// clientKey groups addresses into clients: an IPv4 address, an IPv6 /64.
func ClientKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// counted gives its place back when closed.
type counted struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

func (c *counted) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}
