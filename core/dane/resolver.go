package dane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Resolver asks a trusted validating resolver for TLSA records and for the
// authentication status of MX records. It is safe for concurrent use.
type Resolver struct {
	servers []string
	timeout time.Duration
}

// DefaultTimeout bounds one query to one server when New is given none.
const DefaultTimeout = 5 * time.Second

// New returns a Resolver asking servers ("host:port", tried in order),
// each query within timeout (DefaultTimeout when 0). The servers must be
// validating resolvers the node trusts (see the package documentation).
func New(servers []string, timeout time.Duration) (*Resolver, error) {
	if len(servers) == 0 {
		return nil, errors.New("dane: no validating resolver")
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Resolver{servers: servers, timeout: timeout}, nil
}

// LookupError is a TLSA or MX lookup that failed without an authenticated
// answer: the host must then be treated as unusable.
type LookupError struct {
	// Name is the name looked up.
	Name string
	// Err is the cause.
	Err error
}

// Error names the name and the cause.
func (e *LookupError) Error() string { return fmt.Sprintf("dane: lookup %s: %v", e.Name, e.Err) }

// Unwrap returns the cause.
func (e *LookupError) Unwrap() error { return e.Err }

// SecureMX reports whether the MX records of domain (or, with none, its
// address records standing in for them) are authenticated by DNSSEC:
// only then does DANE apply to its MX hosts (RFC 7672 section 2.2.1). An
// unsigned domain is not an error.
func (r *Resolver) SecureMX(ctx context.Context, domain string) (bool, error) {
	m, err := r.query(ctx, domain, mdns.TypeMX)
	if err != nil {
		return false, err
	}
	return m.AuthenticatedData, nil
}

// TLSA returns the authenticated TLSA records of an MX host for port 25.
// It returns no records and no error when the zone is unsigned or denies
// their existence; a *LookupError when no authenticated answer came.
func (r *Resolver) TLSA(ctx context.Context, host string) ([]Record, error) {
	name := "_25._tcp." + strings.TrimSuffix(host, ".")
	m, err := r.query(ctx, name, mdns.TypeTLSA)
	if err != nil {
		return nil, err
	}
	if !m.AuthenticatedData {
		return nil, nil // insecure: DANE does not apply
	}
	var out []Record
	for _, rr := range m.Answer {
		t, ok := rr.(*mdns.TLSA)
		if !ok {
			continue
		}
		rec, err := fromRR(t)
		if err != nil {
			return nil, &LookupError{Name: name, Err: err}
		}
		out = append(out, rec)
	}
	return out, nil
}

// query asks each server in turn for name and qtype with the DO bit, and
// returns the first NOERROR or NXDOMAIN answer.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	q.SetEdns0(4096, true)
	q.AuthenticatedData = true // RFC 6840 section 5.7: ask for the AD bit
	var last error
	for _, s := range r.servers {
		m, err := r.exchange(ctx, q, s)
		if err == nil {
			return m, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &LookupError{Name: name, Err: last}
}

// exchange asks one server, over UDP and then TCP when the answer is
// truncated.
func (r *Resolver) exchange(ctx context.Context, q *mdns.Msg, server string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c := &mdns.Client{Net: "udp", Timeout: r.timeout}
	m, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	if m.Id != q.Id || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) {
		return nil, fmt.Errorf("%s: reply does not match the query", server)
	}
	switch m.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
		return m, nil
	}
	return nil, fmt.Errorf("%s: %s", server, mdns.RcodeToString[m.Rcode])
}
