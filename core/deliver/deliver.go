// Package deliver opens SMTP sessions to a domain's MX hosts for the queue:
// it implements queue.Transport on top of core/smtpclient.
//
// Dial walks the MX hosts in preference order and each host's addresses in
// turn, bound to the chosen source IP and announcing that IP's HELO name.
// A host that refuses the connection, times out, or greets with a 4xx/5xx
// is skipped for the next one, so a dead primary (nolisting) or one broken
// host of several costs one attempt, not the delivery. When every host
// fails, the most telling error wins: a server's reply over a bare network
// failure.
//
// The route's TLS policy (queue.Target.TLS) and what the recipient domain
// publishes decide how each session is protected (see tls.go and the
// README's TLS section): DANE for MX hosts with authenticated TLSA records
// (Options.DANE), else the domain's MTA-STS policy (Options.MTASTS), else
// opportunistic STARTTLS. Under DANE or an enforced MTA-STS policy a host
// that does not offer STARTTLS, presents a certificate that does not
// verify, or is not among the policy's MX hosts is skipped with a
// *PolicyError whose 451 reply the queue records: the mail waits, it never
// leaves in clear. Without such a policy STARTTLS is opportunistic; a host
// whose TLS handshake fails is then retried in clear at once and
// remembered for an hour, as a broken TLS stack should delay mail, not
// stop it. Every session under DANE or MTA-STS is reported to
// Options.Reporter (TLS-RPT).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"corriere/core/dane"
	"corriere/core/mtasts"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/smtpclient"
	"corriere/core/tlsrpt"
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
	// MTASTS looks up the recipient domains' MTA-STS policies. The default
	// value nil disables MTA-STS.
	MTASTS *mtasts.Cache
	// DANE asks the trusted validating resolver for TLSA records. The
	// default value nil disables DANE.
	DANE *dane.Resolver
	// Reporter receives the outcome of every session under a DANE or
	// MTA-STS policy. The default value nil reports nothing.
	Reporter TLSReporter
	// Logger logs skipped hosts. The default value is slog.Default().
	Logger *slog.Logger
}

// Transport dials MX hosts. It is safe for concurrent use.
type Transport struct {
	opts Options

	mu     sync.Mutex
	noTLS  map[string]time.Time // host → until when STARTTLS is skipped
	nowFun func() time.Time
	dane   daneCache
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
	return &Transport{opts: opts, noTLS: map[string]time.Time{}, nowFun: time.Now, dane: daneCache{m: map[string]daneEntry{}}}, nil
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

// Dial connects to the first MX host of t that accepts a session under
// the TLS policy.
func (t *Transport) Dial(ctx context.Context, tg queue.Target) (queue.Conn, error) {
	var best *DialError
	tried := 0
	source := netip.Addr{}
	if tg.Source != "" {
		if a, err := netip.ParseAddr(tg.Source); err == nil {
			source = a
		}
	}
	tt := newTLSTarget(tg)
	dp, err := t.domainPolicy(ctx, tt, true)
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			t.opts.Logger.Warn("TLS policy defers the delivery", "domain", tg.Domain, "policy", pe.Policy, "result", pe.Result, "err", pe.Err)
			return nil, &DialError{Host: tg.Domain, Err: pe.asClientError()}
		}
		return nil, &DialError{Host: tg.Domain, Err: err}
	}
	for _, mx := range tg.MX.Hosts {
		hp, err := t.host(ctx, dp, mx.Host)
		if err != nil {
			var pe *PolicyError
			errors.As(err, &pe)
			t.report(tt, hp, mx.Host, "", pe.Result, pe.Err.Error())
			t.opts.Logger.Warn("MX host skipped by the TLS policy", "domain", tg.Domain, "mx", mx.Host, "policy", pe.Policy, "result", pe.Result, "err", pe.Err)
			best = better(best, &DialError{Host: mx.Host, Err: pe.asClientError()})
			continue
		}
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
			c, err := t.dialHost(ctx, mx.Host, a, tg, tt, hp)
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

// newTLSTarget returns the part of tg the TLS policy reads.
func newTLSTarget(tg queue.Target) tlsTarget {
	mode := tg.TLS
	if mode == "" {
		mode = policy.TLSAuto
	}
	return tlsTarget{domain: strings.ToLower(tg.Domain), source: tg.Source, mode: mode}
}

func (t *Transport) dialHost(ctx context.Context, host string, a netip.Addr, tg queue.Target, tt tlsTarget, hp *hostPolicy) (*conn, error) {
	opts := t.opts.Client
	opts.LocalAddr = tg.Source
	if tg.Helo != "" {
		// A source with its own HELO name announces it; otherwise the
		// node's hostname (Options.Client.Helo) stays.
		opts.Helo = tg.Helo
	}
	t.clientOptions(&opts, hp, host)
	if hp.auth == authNone && t.skipTLS(host) {
		opts.TLSMode = smtpclient.TLSDisabled
	}
	remote := a.String()
	addr := net.JoinHostPort(remote, strconv.Itoa(t.opts.Port))
	c, err := smtpclient.Dial(ctx, addr, host, opts)
	reported := false
	if errors.Is(err, smtpclient.ErrTLSFailed) && opts.TLSMode == smtpclient.TLSOpportunistic {
		if hp.testing {
			t.report(tt, hp, host, remote, certResult(err, tlsrpt.ResultValidationFailure), err.Error())
			reported = true
		}
		t.opts.Logger.Info("STARTTLS failed; delivering in clear and skipping TLS for this host for a while", "mx", host, "err", err)
		t.rememberNoTLS(host)
		opts.TLSMode = smtpclient.TLSDisabled
		c, err = smtpclient.Dial(ctx, addr, host, opts)
	}
	if err != nil {
		if pe, ok := policyFailure(hp, host, err); ok {
			t.report(tt, hp, host, remote, pe.Result, pe.Err.Error())
			t.opts.Logger.Warn("MX host failed the TLS policy", "domain", tg.Domain, "mx", host, "addr", remote, "policy", pe.Policy, "result", pe.Result, "err", pe.Err)
			return nil, pe.asClientError()
		}
		return nil, err
	}
	switch {
	case hp.testing && !reported:
		result, reason := t.checkTesting(c, hp, host)
		t.report(tt, hp, host, remote, result, reason)
		if result != "" {
			t.opts.Logger.Warn("MTA-STS testing policy would have refused this host; delivering as the policy asks", "domain", tg.Domain, "mx", host, "result", result, "reason", reason)
		}
	case hp.auth != authNone:
		t.report(tt, hp, host, remote, "", "")
	}
	_, encrypted := c.TLS()
	return &conn{Client: c, host: host, t: t, target: tt, auth: hp.auth, encrypted: encrypted}, nil
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
	t    *Transport
	// target is what the session was opened for, auth how the host was
	// authenticated, encrypted whether the session is under TLS.
	target    tlsTarget
	auth      auth
	encrypted bool
}

// Serves reports whether the session may carry mail for tg: the same
// domain and policy it was opened for, or another whose TLS policy the
// session's protection satisfies for this host.
func (c *conn) Serves(ctx context.Context, tg queue.Target) bool {
	tt := newTLSTarget(tg)
	if tt.domain == c.target.domain && tt.mode == c.target.mode {
		return true
	}
	dp, err := c.t.domainPolicy(ctx, tt, false)
	if err != nil {
		return false
	}
	hp, err := c.t.host(ctx, dp, c.host)
	switch {
	case err != nil:
		return false
	case hp.auth == authNone:
		return true
	case hp.auth == authAny:
		return c.encrypted
	}
	return c.auth == hp.auth
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
