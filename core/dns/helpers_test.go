package dns

import (
	"net"
	"testing"
	"time"

	"corriere/core/clock"
	"corriere/core/dns/authserver"

	mdns "github.com/miekg/dns"
)

// startAuth starts an authoritative server with records on 127.0.0.1.
func startAuth(t testing.TB, records ...string) *authserver.Server {
	t.Helper()
	s, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.MustAdd(records...)
	return s
}

// startHandler serves h over UDP and TCP on one 127.0.0.1 port and returns
// the address.
func startHandler(t testing.TB, h mdns.HandlerFunc) string {
	t.Helper()
	ep, err := authserver.Serve("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	return ep.Addr
}

// deadServer returns a 127.0.0.1 UDP and TCP address nothing listens on.
func deadServer(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// newResolver returns a Resolver with short timeouts for servers.
func newResolver(t testing.TB, opts Options, servers ...string) *Resolver {
	t.Helper()
	opts.Servers = servers
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newClock returns a fake clock that moves only when told.
func newClock() *clock.Fake { return clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }
