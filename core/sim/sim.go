package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/emersion/go-smtp"

	"corriere/core/dns/authserver"
	"corriere/core/smtpserve"
)

// Options configure Start.
type Options struct {
	// DNSAddr is where the DNS server listens, UDP and TCP. The default value
	// is "127.0.0.1:0" (a free port; see Sim.DNSAddr).
	DNSAddr string
	// MXPort is the port every simulated MX listens on, each on its own
	// address. Zero picks a port free on all of the world's MX addresses,
	// retrying on conflict, so parallel tests do not collide. The default
	// value is 0.
	MXPort int
	// ReturnPort is the port to which bounces and complaint reports are
	// delivered, at the MX of the recipient's domain as the simulator's DNS
	// answers it. Zero disables asynchronous mail. The default value is 0.
	ReturnPort int
	// Seed makes random choices (complaint sampling) reproducible: the same
	// seed and the same order of accepted mail give the same complaints.
	Seed int64
	// Now is the clock for greylisting, rate windows and timestamps; tests
	// move it forward instead of sleeping. Delays of tarpits and of
	// asynchronous mail are real time. The default value is time.Now.
	Now func() time.Time
	// Logger receives one line per accepted or refused message. The default
	// value discards logs.
	Logger *slog.Logger
	// MaxDeliveries is how many accepted recipients Deliveries keeps, the
	// most recent. The default value is 10000.
	MaxDeliveries int
	// PolicyPort is the HTTPS port of the MTA-STS policy server, on
	// 127.0.0.1. The default value 0 picks a free port (see
	// Sim.PolicyPort).
	PolicyPort int
}

// EnsureDefaults fills the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.DNSAddr == "" {
		o.DNSAddr = "127.0.0.1:0"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxDeliveries == 0 {
		o.MaxDeliveries = 10000
	}
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if o.MXPort < 0 || o.MXPort > 65535 {
		return fmt.Errorf("sim: MXPort %d is out of range", o.MXPort)
	}
	if o.ReturnPort < 0 || o.ReturnPort > 65535 {
		return fmt.Errorf("sim: ReturnPort %d is out of range", o.ReturnPort)
	}
	if o.MaxDeliveries < 0 {
		return fmt.Errorf("sim: MaxDeliveries %d is negative", o.MaxDeliveries)
	}
	return nil
}

// Delivery is one recipient a simulated MX accepted.
type Delivery struct {
	// Provider is the provider's name.
	Provider string
	// MXHost is the MX host that accepted the message.
	MXHost string
	// Recipient is the RCPT TO address.
	Recipient string
	// From is the MAIL FROM address, "" for the null sender.
	From string
	// SourceIP is the client's address (the MTA's bound source address).
	SourceIP string
	// TLS reports whether the session used STARTTLS.
	TLS bool
	// MessageID is the Message-ID header field's value, if any.
	MessageID string
	// Header is the message header as received (at most 64 KiB), ending
	// with the CRLF of its last field. The recipients of one message share
	// it: do not modify it.
	Header []byte
	// BodySize is the size of the body in bytes.
	BodySize int
	// Time is when the message was accepted, by Options.Now.
	Time time.Time
}

// Reasons for refusals, the keys of ProviderStats.Rejected.
const (
	ReasonConnectionLimit = "connection_limit"
	ReasonBlocked         = "blocked"
	ReasonUnknownUser     = "unknown_user"
	ReasonMailboxFull     = "mailbox_full"
	ReasonSpam            = "spam"
)

// ProviderStats are one provider's counters since Start.
type ProviderStats struct {
	// Connections counts TCP connections to the provider's MX hosts,
	// refused ones included.
	Connections int
	// PeakConnectionsPerIP is the highest number of connections each source
	// address held open at once.
	PeakConnectionsPerIP map[string]int
	// Accepted counts accepted recipients.
	Accepted int
	// Greylisted counts recipients deferred by greylisting.
	Greylisted int
	// RateLimited counts MAIL transactions deferred by the rate limit.
	RateLimited int
	// Rejected counts refusals by reason (Reason* constants): connections
	// for connection_limit and connect-time blocks, recipients for the
	// others, messages for a spam marker.
	Rejected map[string]int
	// AsyncBounces counts bounces delivered to the return port.
	AsyncBounces int
	// Complaints counts complaint reports delivered to the return port.
	Complaints int
}

// Sim is a running simulated mail internet.
type Sim struct {
	opts      Options
	world     *World
	dns       *authserver.Server
	mxPort    int
	servers   []*smtp.Server
	listeners []net.Listener
	providers []*provider
	cert      *x509.Certificate
	outbox    *outbox

	tlsConfig, attackerTLS *tls.Config
	policyPort             int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex
	deliveries []Delivery // ring buffer of at most opts.MaxDeliveries
	next       int        // index of the oldest once the ring is full
}

// host is one MX host to serve.
type host struct {
	name string
	ip   string
	dead bool
	p    *provider
}

// Start serves w until Close. When ctx ends the MX servers and pending
// asynchronous mail stop; Close is still needed to stop DNS and release
// everything. The simulator reads w while it runs: do not modify it.
func Start(ctx context.Context, w *World, opts Options) (*Sim, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{opts: opts, world: w}
	s.ctx, s.cancel = context.WithCancel(ctx)

	hosts, err := s.buildProviders()
	if err != nil {
		s.cancel()
		return nil, err
	}
	if err := s.makeCertificates(hosts); err != nil {
		s.cancel()
		return nil, err
	}
	// With port 0, authserver picks a port free for both UDP and TCP.
	dns, err := authserver.Start(opts.DNSAddr)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("sim: dns: %w", err)
	}
	s.dns = dns
	if err := s.dns.Add(append(s.zone(hosts), s.tlsRecords()...)...); err != nil {
		s.Close()
		return nil, fmt.Errorf("sim: dns: %w", err)
	}
	s.secureZones()
	if err := s.serveMX(hosts); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.servePolicies(); err != nil {
		s.Close()
		return nil, err
	}
	if opts.ReturnPort > 0 {
		s.outbox = newOutbox(s)
		s.wg.Go(func() { s.outbox.run(s.ctx) })
	}
	s.wg.Go(func() {
		<-s.ctx.Done()
		s.closeServers()
	})
	return s, nil
}

// buildProviders makes the run-time state of each provider and lists the
// distinct MX hosts.
func (s *Sim) buildProviders() ([]host, error) {
	var hosts []host
	seen := map[string]bool{}
	for i := range s.world.Providers {
		p, err := newProvider(s, &s.world.Providers[i], i)
		if err != nil {
			return nil, fmt.Errorf("sim: world: provider %q: %w", s.world.Providers[i].Name, err)
		}
		s.providers = append(s.providers, p)
		for _, d := range p.cfg.Domains {
			for _, mx := range d.MX {
				name := strings.ToLower(strings.TrimSuffix(mx.Host, "."))
				if seen[name] {
					continue
				}
				seen[name] = true
				hosts = append(hosts, host{name: name, ip: mx.IP, dead: mx.Dead, p: p})
				if !mx.Dead && p.outIP == nil {
					p.outIP = net.ParseIP(mx.IP)
					p.outHost = name
				}
			}
		}
		if p.outHost == "" {
			p.outHost = strings.ToLower(strings.TrimSuffix(p.cfg.Domains[0].MX[0].Host, "."))
		}
	}
	return hosts, nil
}

// zone returns the DNS records of the world.
func (s *Sim) zone(hosts []host) []string {
	var rrs []string
	for _, p := range s.providers {
		for _, d := range p.cfg.Domains {
			for _, mx := range d.MX {
				rrs = append(rrs, fmt.Sprintf("%s 300 IN MX %d %s", mdns.Fqdn(d.Name), mx.Preference, mdns.Fqdn(mx.Host)))
			}
		}
	}
	for _, h := range hosts {
		rev, _ := mdns.ReverseAddr(h.ip) // validated as an IPv4 address
		rrs = append(rrs,
			fmt.Sprintf("%s 300 IN A %s", mdns.Fqdn(h.name), h.ip),
			fmt.Sprintf("%s 300 IN PTR %s", rev, mdns.Fqdn(h.name)))
	}
	for _, d := range s.world.NullMX {
		rrs = append(rrs, fmt.Sprintf("%s 300 IN MX 0 .", mdns.Fqdn(d)))
	}
	return append(rrs, s.world.Records...)
}

// serveMX listens on every live host and starts its SMTP server.
func (s *Sim) serveMX(hosts []host) error {
	var live, dead []string
	for _, h := range hosts {
		if h.dead {
			dead = append(dead, h.ip)
			continue
		}
		live = append(live, h.ip)
	}
	listeners, port, err := listenAll(live, dead, s.opts.MXPort)
	if err != nil {
		return err
	}
	s.mxPort = port
	s.listeners = listeners
	i := 0
	for _, h := range hosts {
		if h.dead {
			continue
		}
		srv := s.newServer(h)
		srv.TLSConfig = s.serverTLS(h.p.cfg)
		l := &listener{Listener: listeners[i], sim: s, host: h}
		i++
		s.servers = append(s.servers, srv)
		s.wg.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
				s.opts.Logger.Error("sim: serve", "mx", h.name, "err", err)
			}
		})
	}
	return nil
}

// listenAll listens on port of every live address; port 0 picks one that is
// free on all of them, and also free (at that moment) on the dead addresses,
// so that no other process answers for a nolisting primary.
func listenAll(live, dead []string, port int) ([]net.Listener, int, error) {
	if len(live) == 0 {
		return nil, port, nil
	}
	if port != 0 {
		ls, err := listenPort(live, dead, port)
		if err != nil {
			return nil, 0, fmt.Errorf("sim: mx port %d: %w", port, err)
		}
		return ls, port, nil
	}
	var lastErr error
	for range 50 {
		first, err := net.Listen("tcp4", net.JoinHostPort(live[0], "0"))
		if err != nil {
			return nil, 0, fmt.Errorf("sim: listen on %s: %w", live[0], err)
		}
		p := first.Addr().(*net.TCPAddr).Port
		rest, err := listenPort(live[1:], dead, p)
		if err == nil {
			return append([]net.Listener{first}, rest...), p, nil
		}
		first.Close()
		lastErr = err
	}
	return nil, 0, fmt.Errorf("sim: no port free on all MX addresses: %w", lastErr)
}

func listenPort(live, dead []string, port int) ([]net.Listener, error) {
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	ps := strconv.Itoa(port)
	for _, ip := range live {
		l, err := net.Listen("tcp4", net.JoinHostPort(ip, ps))
		if err != nil {
			closeAll()
			return nil, err
		}
		ls = append(ls, l)
	}
	for _, ip := range dead {
		l, err := net.Listen("tcp4", net.JoinHostPort(ip, ps))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dead MX %s: %w", ip, err)
		}
		l.Close()
	}
	return ls, nil
}

func (s *Sim) newServer(h host) *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return newSession(h, c), nil
	}))
	srv.Domain = h.name
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = 2 * time.Minute
	srv.WriteTimeout = time.Minute
	// go-smtp's errors are mostly clients that went away.
	srv.ErrorLog = smtpserve.Log{Logger: s.opts.Logger.With("mx", h.name), Level: slog.LevelDebug}
	return srv
}

// maxMessageBytes bounds what one DATA may carry.
const maxMessageBytes = 10 << 20

// DNSAddr returns the "127.0.0.1:port" address of the DNS server (UDP and
// TCP).
func (s *Sim) DNSAddr() string { return s.dns.Addr }

// MXPort returns the port every simulated MX listens on.
func (s *Sim) MXPort() int { return s.mxPort }

// Certificate returns the self-signed certificate the MX hosts present over
// STARTTLS, or nil when no provider offers STARTTLS. Add it to a
// certificate pool to verify the simulated hosts by name.
func (s *Sim) Certificate() *x509.Certificate { return s.cert }

// Deliveries returns the accepted recipients, oldest first, at most
// Options.MaxDeliveries of the most recent.
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, 0, len(s.deliveries))
	out = append(out, s.deliveries[s.next:]...)
	return append(out, s.deliveries[:s.next]...)
}

func (s *Sim) record(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deliveries) < s.opts.MaxDeliveries {
		s.deliveries = append(s.deliveries, d)
		return
	}
	s.deliveries[s.next] = d
	s.next = (s.next + 1) % len(s.deliveries)
}

// Stats returns a copy of each provider's counters, by provider name.
func (s *Sim) Stats() map[string]ProviderStats {
	out := make(map[string]ProviderStats, len(s.providers))
	for _, p := range s.providers {
		p.mu.Lock()
		st := p.stats
		st.PeakConnectionsPerIP = maps.Clone(p.stats.PeakConnectionsPerIP)
		st.Rejected = maps.Clone(p.stats.Rejected)
		p.mu.Unlock()
		out[p.cfg.Name] = st
	}
	return out
}

// closeServers stops the MX servers. It closes the listeners itself too: a
// server whose Serve has not yet registered its listener would otherwise
// accept forever.
func (s *Sim) closeServers() {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("sim: close %s: %w", srv.Domain, err))
		}
	}
	for _, l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("sim: close %s: %w", l.Addr(), err))
		}
	}
	s.mu.Lock()
	s.closeErr = errors.Join(s.closeErr, errors.Join(errs...))
	s.mu.Unlock()
}

// Close stops every server and pending asynchronous mail and waits for the
// simulator's goroutines. It may be called more than once.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.dns != nil {
			s.dns.Close()
		}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}
