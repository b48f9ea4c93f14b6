// Package deliver opens SMTP sessions to a domain's MX hosts for the queue:
// it implements queue.Transport on top of core/smtpclient.
//
// Dial walks the MX hosts in preference order and each host's addresses in
// turn, bound to the chosen source IP and announcing that IP's HELO name.
// A host that refuses the connection, times out, or greets with a 4xx/5xx
// is skipped for the next one, so a dead primary (nolisting) or one broken
// host of several costs one attempt, not the delivery. When every host
// fails, the most telling error wins: a server's reply over a bare network
// failure. STARTTLS is opportunistic; a host whose TLS handshake fails is
// retried in clear at once and remembered for an hour, as a broken TLS
// stack should delay mail, not stop it.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"corriere/core/queue"
	"corriere/core/smtpclient"
)

// AddressResolver finds a host's addresses; *dns.Resolver implements it.
type AddressResolver interface {
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// Options configure a Transport.
type Options struct {
	// Resolver resolves MX host names. Required.
	Resolver AddressResolver
	// Port is the TCP port of MX hosts. The default value is 25.
	Port int
	// Client holds the SMTP client settings (timeouts, TLS, and Helo, the
	// node's hostname). LocalAddr is set per dial from the route, and so is
	// Helo when the route's source has a HELO name of its own.
	Client smtpclient.Options
	// TLSMemory is how long a host whose TLS handshake failed is contacted
	// without STARTTLS. The default value is 1h.
	TLSMemory time.Duration
	// Logger logs skipped hosts. The default value is slog.Default().
	Logger *slog.Logger
}

// Transport dials MX hosts. It is safe for concurrent use.
type Transport struct {
	opts Options

	mu     sync.Mutex
	noTLS  map[string]time.Time // host → until when STARTTLS is skipped
	nowFun func() time.Time
}

var _ queue.Transport = (*Transport)(nil)

// New returns a Transport.
func New(opts Options) (*Transport, error) {
	if opts.Resolver == nil {
		return nil, errors.New("deliver: no resolver")
	}
	if opts.Port == 0 {
		opts.Port = 25
	}
	if opts.TLSMemory == 0 {
		opts.TLSMemory = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Transport{opts: opts, noTLS: map[string]time.Time{}, nowFun: time.Now}, nil
}

// DialError is returned when no MX host could be reached; it names the host
// whose failure it reports.
type DialError struct {
	// Host is the MX host of Err.
	Host string
	// Err is the most telling failure among the hosts tried.
	Err error
	// Tried counts the addresses tried.
	Tried int
}

// Error says which hosts failed and how.
func (e *DialError) Error() string {
	return fmt.Sprintf("deliver: no MX host reachable (%d tried); %s: %v", e.Tried, e.Host, e.Err)
}

// Unwrap returns the underlying failure.
func (e *DialError) Unwrap() error { return e.Err }

// MXHost names the host of the failure, for the queue's event records.
func (e *DialError) MXHost() string { return e.Host }

// Dial connects to the first MX host of t that accepts a session.
func (t *Transport) Dial(ctx context.Context, tg queue.Target) (queue.Conn, error) {
	var best *DialError
	tried := 0
	source := netip.Addr{}
	if tg.Source != "" {
		if a, err := netip.ParseAddr(tg.Source); err == nil {
			source = a
		}
	}
	for _, mx := range tg.MX.Hosts {
		addrs, err := t.opts.Resolver.LookupIP(ctx, mx.Host)
		if err != nil {
			best = better(best, &DialError{Host: mx.Host, Err: err})
			continue
		}
		for _, a := range addrs {
			if source.IsValid() && source.Is4() != a.Is4() {
				continue // a v4 source cannot reach a v6 host, nor the reverse
			}
			tried++
			c, err := t.dialHost(ctx, mx.Host, a, tg)
			if err == nil {
				return c, nil
			}
			if ctx.Err() != nil {
				return nil, &DialError{Host: mx.Host, Err: err, Tried: tried}
			}
			t.opts.Logger.Debug("MX host skipped", "domain", tg.Domain, "mx", mx.Host, "addr", a.String(), "source", tg.Source, "err", err)
			best = better(best, &DialError{Host: mx.Host, Err: err})
		}
	}
	if best == nil {
		best = &DialError{Host: tg.Domain, Err: fmt.Errorf("no usable address for any MX host of %s from source %q", tg.Domain, tg.Source)}
	}
	best.Tried = tried
	return nil, best
}

func (t *Transport) dialHost(ctx context.Context, host string, a netip.Addr, tg queue.Target) (*conn, error) {
	opts := t.opts.Client
	opts.LocalAddr = tg.Source
	if tg.Helo != "" {
		// A source with its own HELO name announces it; otherwise the
		// node's hostname (Options.Client.Helo) stays.
		opts.Helo = tg.Helo
	}
	if t.skipTLS(host) {
		opts.TLSMode = smtpclient.TLSDisabled
	}
	addr := net.JoinHostPort(a.String(), strconv.Itoa(t.opts.Port))
	c, err := smtpclient.Dial(ctx, addr, host, opts)
	if errors.Is(err, smtpclient.ErrTLSFailed) && opts.TLSMode == smtpclient.TLSOpportunistic {
		t.opts.Logger.Info("STARTTLS failed; delivering in clear and skipping TLS for this host for a while", "mx", host, "err", err)
		t.rememberNoTLS(host)
		opts.TLSMode = smtpclient.TLSDisabled
		c, err = smtpclient.Dial(ctx, addr, host, opts)
	}
	if err != nil {
		return nil, err
	}
	return &conn{Client: c, host: host}, nil
}

func (t *Transport) skipTLS(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.noTLS[host]
	if ok && t.nowFun().After(until) {
		delete(t.noTLS, host)
		return false
	}
	return ok
}

func (t *Transport) rememberNoTLS(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noTLS[host] = t.nowFun().Add(t.opts.TLSMemory)
}

// better returns the more telling of two failures: one carrying a server
// reply beats a network failure; otherwise the first (most preferred host)
// stays.
func better(cur, next *DialError) *DialError {
	if cur == nil {
		return next
	}
	var ce *smtpclient.Error
	curReply := errors.As(cur.Err, &ce) && ce.Reply != nil
	nextReply := errors.As(next.Err, &ce) && ce.Reply != nil
	if nextReply && !curReply {
		return next
	}
	return cur
}

// conn is an SMTP session with one MX host.
type conn struct {
	*smtpclient.Client
	host string
}

// quitTimeout bounds the courtesy QUIT.
const quitTimeout = 5 * time.Second

// Host returns the MX host name.
func (c *conn) Host() string { return c.host }

// Close sends QUIT and closes the connection.
func (c *conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
	defer cancel()
	return c.Client.Quit(ctx)
}
