// Package authserver is a small authoritative DNS server for loopback use:
// the resolver's tests, the simulator (corriere sim) and every end-to-end
// test that needs MX, A, TXT or PTR records for invented domains.
//
// Records are added in zone-file syntax and may change while the server
// runs. A name with no records answers NXDOMAIN; a name with records but
// none of the asked type answers NOERROR with no answer (NODATA) and an SOA
// whose minimum drives negative caching. Names can be made to fail with
// SERVFAIL or to never answer, to exercise temporary DNS failures.
package authserver

import (
	"fmt"
	"net"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Server serves records over UDP and TCP on one loopback port.
type Server struct {
	// Addr is the "127.0.0.1:port" the server listens on, for both UDP and
	// TCP.
	Addr string

	mu       sync.RWMutex
	records  map[string][]mdns.RR // by lower-case FQDN
	servfail map[string]bool
	drop     map[string]bool
	secure   map[string]bool
	queries  int

	ep *Endpoint
}

// NegativeTTL is the SOA minimum of answers without records.
const NegativeTTL = 60

// Start listens on addr ("127.0.0.1:0" picks a port free for both UDP and
// TCP) and serves until Close.
func Start(addr string) (*Server, error) {
	s := &Server{
		records:  map[string][]mdns.RR{},
		servfail: map[string]bool{},
		drop:     map[string]bool{},
		secure:   map[string]bool{},
	}
	ep, err := Serve(addr, s)
	if err != nil {
		return nil, err
	}
	s.ep, s.Addr = ep, ep.Addr
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.ep.Close() }

// Endpoint is a DNS handler served over UDP and TCP on one port.
type Endpoint struct {
	// Addr is the "ip:port" the handler is served on, for both UDP and
	// TCP.
	Addr string

	udp, tcp *mdns.Server
}

// Serve serves h over UDP and TCP on one port of addr until Close, and
// returns once both are ready. With port 0 ("127.0.0.1:0") it picks a port
// free for both. Start serves records; tests that need a server to answer
// in ways no zone does (hostile or slow replies) serve their own handler
// with Serve, so every DNS server of the tests binds its port the same way.
func Serve(addr string, h mdns.Handler) (*Endpoint, error) {
	pc, l, err := listen(addr)
	if err != nil {
		return nil, err
	}
	ep := &Endpoint{
		Addr: pc.LocalAddr().String(),
		udp:  &mdns.Server{PacketConn: pc, Handler: h},
		tcp:  &mdns.Server{Listener: l, Handler: h},
	}
	started := make(chan error, 2)
	for _, srv := range []*mdns.Server{ep.udp, ep.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func(srv *mdns.Server) {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}(srv)
	}
	for range 2 {
		if err := <-started; err != nil {
			ep.Close()
			return nil, fmt.Errorf("authserver: serve: %w", err)
		}
	}
	return ep, nil
}

// listen binds UDP and TCP on one port. With port 0 the kernel picks the
// UDP port, which another process may hold for TCP: it then tries again
// with a fresh port, a bounded number of times.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("authserver: address %q: %w", addr, err)
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("authserver: listen udp %s: %w", addr, err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || try == 50 {
			return nil, nil, fmt.Errorf("authserver: listen tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}

// Close stops serving. Closing an endpoint that failed to start, or twice,
// is harmless.
func (ep *Endpoint) Close() {
	_ = ep.udp.Shutdown() // an error means it was not running
	_ = ep.tcp.Shutdown()
}

// Add adds records given in zone-file syntax, one per string, for example
// "example.org. 300 IN MX 10 mx1.example.org.". Names must be fully
// qualified.
func (s *Server) Add(records ...string) error {
	parsed := make([]mdns.RR, 0, len(records))
	for _, r := range records {
		rr, err := mdns.NewRR(r)
		if err != nil {
			return fmt.Errorf("authserver: record %q: %w", r, err)
		}
		if rr == nil {
			return fmt.Errorf("authserver: record %q is empty", r)
		}
		parsed = append(parsed, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range parsed {
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
	return nil
}

// MustAdd is Add for fixtures; it panics on a malformed record.
func (s *Server) MustAdd(records ...string) {
	if err := s.Add(records...); err != nil {
		panic(err)
	}
}

// Remove deletes every record of name.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, fqdn(name))
}

// SetServFail makes queries for name answer SERVFAIL (on) or normally.
func (s *Server) SetServFail(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[fqdn(name)] = on
}

// SetDrop makes queries for name go unanswered (on), as a dead server would.
func (s *Server) SetDrop(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[fqdn(name)] = on
}

// SetSecure makes the answers for name carry the AD bit, as a validating
// resolver sets it for a DNSSEC-signed zone, so that DANE tests and the
// simulator can publish authenticated TLSA records. Only queries that ask
// for DNSSEC (the DO or AD bit) get it, as from a real resolver.
func (s *Server) SetSecure(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secure[fqdn(name)] = on
}

// Queries returns how many queries the server has received.
func (s *Server) Queries() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queries
}

func fqdn(name string) string { return strings.ToLower(mdns.Fqdn(name)) }

// ServeDNS answers one query.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeFormatError)
		_ = w.WriteMsg(m) // the client is gone if this fails
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	s.mu.Lock()
	s.queries++
	drop, servfail, secure := s.drop[name], s.servfail[name], s.secure[name]
	s.mu.Unlock()
	if drop {
		return
	}
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if opt := req.IsEdns0(); secure && (req.AuthenticatedData || opt != nil && opt.Do()) {
		m.AuthenticatedData = true
	}
	if servfail {
		m.Rcode = mdns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	for hops := 0; hops < 8; hops++ {
		rrs, exists := s.records[name]
		if !exists {
			if len(m.Answer) == 0 {
				m.Rcode = mdns.RcodeNameError
			}
			m.Ns = []mdns.RR{soa(name)}
			break
		}
		var cname *mdns.CNAME
		found := false
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype || q.Qtype == mdns.TypeANY {
				m.Answer = append(m.Answer, mdns.Copy(rr))
				found = true
			} else if c, ok := rr.(*mdns.CNAME); ok {
				cname = c
			}
		}
		if found || cname == nil {
			if !found {
				m.Ns = []mdns.RR{soa(name)}
			}
			break
		}
		m.Answer = append(m.Answer, mdns.Copy(cname))
		name = strings.ToLower(cname.Target)
	}
	if w.LocalAddr().Network() == "udp" {
		// Too large for the client's buffer: set TC so it retries over TCP.
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m) // the client is gone if this fails
}

func soa(name string) mdns.RR {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: name, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: NegativeTTL},
		Ns:      "ns.invalid.",
		Mbox:    "hostmaster.invalid.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: NegativeTTL,
	}
}
