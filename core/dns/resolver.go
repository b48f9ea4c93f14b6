package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// MX is one mail exchanger of a domain.
type MX struct {
	// Host is the exchanger's name, in lower case without the trailing dot.
	Host string
	// Pref is the MX preference; lower values are tried first.
	Pref uint16
}

// MXResult is where mail for a domain goes.
type MXResult struct {
	// Domain is the looked-up domain, in lower case A-label form without
	// the trailing dot.
	Domain string
	// Hosts are the exchangers in preference order, lowest first; hosts of
	// equal preference come in random order (RFC 5321 section 5.1).
	Hosts []MX
	// Implicit is true when the domain has no MX records but has an
	// address, so the domain itself is the only host (RFC 5321 section
	// 5.1).
	Implicit bool
}

// Resolver looks names up in DNS with caching. It is safe for concurrent use.
type Resolver struct {
	opts     Options
	udp, tcp *mdns.Client
	cache    *cache

	// preferred is the index in opts.Servers of the server that answered
	// last, where the next query starts.
	preferred atomic.Int32

	mu      sync.Mutex
	flights map[key]*flight // queries in progress
}

// flight is one query in progress, shared by every caller that wants its
// answer.
type flight struct {
	done   chan struct{} // closed when ans and err are set
	ans    *answer
	err    error
	cancel context.CancelFunc

	waiters int // callers still waiting, guarded by Resolver.mu
}

// call is one caller's lookup: settled at once (ans or err), or waiting on f.
type call struct {
	key key
	ans *answer
	err error
	f   *flight
}

// New returns a Resolver configured by opts, after filling in defaults and
// validating them.
func New(opts Options) (*Resolver, error) {
	opts.Servers = slices.Clone(opts.Servers)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Resolver{
		opts:    opts,
		udp:     &mdns.Client{Net: "udp", Timeout: opts.Timeout},
		tcp:     &mdns.Client{Net: "tcp", Timeout: opts.Timeout},
		cache:   newCache(opts.MaxEntries),
		flights: make(map[key]*flight),
	}, nil
}

// Stats returns how many lookups of one name and type the cache answered
// (hits) and how many it could not (misses). An MX lookup that falls back to
// the implicit MX counts three: MX, A and AAAA.
func (r *Resolver) Stats() (hits, misses uint64) {
	return r.cache.hits.Load(), r.cache.misses.Load()
}

// LookupMX returns the mail exchangers of domain. A domain without MX
// records but with an A or AAAA record gets itself as implicit MX. The error
// is an *Error: NotFound when the domain does not exist or has neither MX
// nor address records, NullMX when it publishes a null MX, Temporary
// otherwise.
func (r *Resolver) LookupMX(ctx context.Context, domain string) (*MXResult, error) {
	name, err := normalize(domain)
	if err != nil {
		return nil, err
	}
	a, err := r.lookup(ctx, key{name, mdns.TypeMX})
	switch {
	case err != nil:
		return nil, err
	case a.nullMX:
		return nil, &Error{Name: name, Kind: NullMX, Detail: "domain does not accept mail (null MX, RFC 7505)"}
	case len(a.mx) > 0:
		hosts := slices.Clone(a.mx)
		shuffleEqualPreference(hosts)
		return &MXResult{Domain: name, Hosts: hosts}, nil
	case a.nxdomain:
		return nil, nxdomain(name, a)
	}
	if _, err := r.lookupIP(ctx, name, "no MX, A or AAAA records"); err != nil {
		return nil, err
	}
	return &MXResult{Domain: name, Hosts: []MX{{Host: name}}, Implicit: true}, nil
}

// LookupIP returns the IPv4 and then the IPv6 addresses of host, asking for
// both at once. A host that is an IP address is returned as is. Addresses of
// one family are returned even when the lookup of the other failed.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	name, err := normalize(host)
	if err != nil {
		return nil, err
	}
	return r.lookupIP(ctx, name, "no A or AAAA records")
}

// LookupTXT returns the TXT records of name, the character-strings of each
// record joined into one string.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	n, err := normalize(name)
	if err != nil {
		return nil, err
	}
	return r.lookupStrings(ctx, key{n, mdns.TypeTXT})
}

// LookupPTR returns the host names of ip's PTR records, in lower case
// without the trailing dot.
func (r *Resolver) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	if !ip.IsValid() {
		return nil, &Error{Name: "invalid IP", Kind: NotFound, Detail: "no address to look up"}
	}
	arpa, err := mdns.ReverseAddr(ip.Unmap().WithZone("").String())
	if err != nil {
		return nil, &Error{Name: ip.String(), Kind: NotFound, Detail: "invalid address: " + err.Error()}
	}
	return r.lookupStrings(ctx, key{strings.TrimSuffix(arpa, "."), mdns.TypePTR})
}

func (r *Resolver) lookupStrings(ctx context.Context, k key) ([]string, error) {
	a, err := r.lookup(ctx, k)
	switch {
	case err != nil:
		return nil, err
	case len(a.strs) > 0:
		return slices.Clone(a.strs), nil
	case a.nxdomain:
		return nil, nxdomain(k.name, a)
	default:
		return nil, noData(k.name, "no "+mdns.TypeToString[k.qtype]+" records", a)
	}
}

// lookupIP asks for the A and AAAA records of name at once and returns the
// addresses found, or an error whose NODATA detail is noDataDetail.
func (r *Resolver) lookupIP(ctx context.Context, name, noDataDetail string) ([]netip.Addr, error) {
	c4 := r.start(ctx, key{name, mdns.TypeA})
	c6 := r.start(ctx, key{name, mdns.TypeAAAA})
	v4, err4 := r.finish(ctx, c4)
	v6, err6 := r.finish(ctx, c6)
	var addrs []netip.Addr
	if err4 == nil {
		addrs = append(addrs, v4.addrs...)
	}
	if err6 == nil {
		addrs = append(addrs, v6.addrs...)
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case err4 != nil:
		return nil, err4
	case err6 != nil:
		return nil, err6
	case v4.nxdomain:
		return nil, nxdomain(name, v4)
	case v6.nxdomain:
		return nil, nxdomain(name, v6)
	default:
		return nil, noData(name, noDataDetail, v4)
	}
}

func nxdomain(name string, a *answer) *Error {
	return &Error{Name: name, Kind: NotFound, Detail: "domain does not exist (NXDOMAIN from " + a.server + ")"}
}

func noData(name, detail string, a *answer) *Error {
	return &Error{Name: name, Kind: NotFound, Detail: detail + " (from " + a.server + ")"}
}

// lookup returns the answer for k, from the cache or from the servers.
func (r *Resolver) lookup(ctx context.Context, k key) (*answer, error) {
	return r.finish(ctx, r.start(ctx, k))
}

// start answers k from the cache, or joins the query in flight for k,
// starting one if there is none. Every call it returns must be passed to
// finish.
func (r *Resolver) start(ctx context.Context, k key) call {
	if a := r.cache.get(k, r.opts.Now()); a != nil {
		return call{key: k, ans: a}
	}
	if err := ctx.Err(); err != nil {
		return call{key: k, err: canceled(k, err)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.flights[k]
	if !ok {
		fctx, cancel := context.WithCancel(context.Background())
		f = &flight{done: make(chan struct{}), cancel: cancel}
		r.flights[k] = f
		go r.fly(fctx, k, f)
	}
	f.waiters++
	return call{key: k, f: f}
}

// finish waits for c's answer until ctx is done. The last caller to give up
// on a flight cancels its query.
func (r *Resolver) finish(ctx context.Context, c call) (*answer, error) {
	if c.f == nil {
		return c.ans, c.err
	}
	select {
	case <-c.f.done:
		return c.f.ans, c.f.err
	case <-ctx.Done():
		r.mu.Lock()
		c.f.waiters--
		if c.f.waiters == 0 {
			if r.flights[c.key] == c.f {
				delete(r.flights, c.key)
			}
			c.f.cancel()
		}
		r.mu.Unlock()
		return nil, canceled(c.key, ctx.Err())
	}
}

// fly runs the query of f and caches its answer.
func (r *Resolver) fly(ctx context.Context, k key, f *flight) {
	defer f.cancel()
	ans, err := r.resolve(ctx, k)
	if err == nil {
		r.cache.put(k, ans, r.opts.Now().Add(ans.ttl))
	}
	f.ans, f.err = ans, err
	r.mu.Lock()
	if r.flights[k] == f {
		delete(r.flights, k)
	}
	r.mu.Unlock()
	close(f.done)
}

// shuffleEqualPreference puts each run of hosts of equal preference in
// random order, so that load spreads over them (RFC 5321 section 5.1).
func shuffleEqualPreference(hosts []MX) {
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Pref == hosts[i].Pref {
			j++
		}
		run := hosts[i:j]
		rand.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
		i = j
	}
}

// Name limits (RFC 1035 section 2.3.4).
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// normalize returns name in lower case A-label form without the trailing
// dot, or a NotFound *Error if it is not a valid DNS name. Underscores are
// allowed, for names such as _dmarc.example.org.
func normalize(name string) (string, error) {
	n := strings.TrimSuffix(name, ".")
	if !isASCII(n) {
		ascii, err := idna.Lookup.ToASCII(n)
		if err != nil {
			return "", invalidName(name, err)
		}
		n = ascii
	}
	n = strings.ToLower(n)
	if err := checkName(n); err != nil {
		return "", invalidName(name, err)
	}
	return n, nil
}

func invalidName(name string, err error) *Error {
	return &Error{Name: name, Kind: NotFound, Detail: "invalid domain name: " + err.Error()}
}

func checkName(n string) error {
	if n == "" {
		return errors.New("empty name")
	}
	if len(n) > maxNameLen {
		return errors.New("longer than 253 octets")
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > maxLabelLen {
			return errors.New("label longer than 63 octets")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("character %q not allowed", c)
			}
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
