package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// ErrNotFound is what a Resolver returns, possibly wrapped, when a name does
// not exist (NXDOMAIN) or has no records of the asked type (NODATA): the
// "void lookup" of RFC 7208 section 4.6.4. Any other error is a temporary
// DNS failure.
var ErrNotFound = errors.New("no such records")

// Resolver is the DNS an evaluation needs. Names are given and returned as
// raw text without the trailing dot; TXT records come back with their
// character-strings joined and without escapes, exactly as published.
type Resolver interface {
	// LookupTXT returns the TXT records of name.
	LookupTXT(ctx context.Context, name string) ([]string, error)
	// LookupAddr returns the A records of name, or the AAAA records when
	// v6 is true.
	LookupAddr(ctx context.Context, name string, v6 bool) ([]netip.Addr, error)
	// LookupMX returns the exchange names of the MX records of name, with
	// no implicit MX: a domain without MX records is ErrNotFound.
	LookupMX(ctx context.Context, name string) ([]string, error)
	// LookupPTR returns the names of the PTR records of ip.
	LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error)
}

// DNS is a Resolver that asks one recursive (or authoritative) server with
// github.com/miekg/dns, UDP first and TCP when the answer is truncated. It
// does not cache: an evaluation asks at most a few dozen questions.
type DNS struct {
	// Server is the "host:port" asked.
	Server string
	// Timeout bounds each query. The default value is 3s.
	Timeout time.Duration
}

// LookupTXT implements Resolver.
func (d *DNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := d.query(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			var b strings.Builder
			for _, s := range t.Txt {
				b.WriteString(unescape(s))
			}
			out = append(out, b.String())
		}
	}
	return out, nil
}

// LookupAddr implements Resolver.
func (d *DNS) LookupAddr(ctx context.Context, name string, v6 bool) ([]netip.Addr, error) {
	qtype := mdns.TypeA
	if v6 {
		qtype = mdns.TypeAAAA
	}
	rrs, err := d.query(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, rr := range rrs {
		var ip netip.Addr
		switch r := rr.(type) {
		case *mdns.A:
			ip, _ = netip.AddrFromSlice(r.A.To4())
		case *mdns.AAAA:
			ip, _ = netip.AddrFromSlice(r.AAAA.To16())
		}
		if ip.IsValid() {
			out = append(out, ip)
		}
	}
	return out, nil
}

// LookupMX implements Resolver.
func (d *DNS) LookupMX(ctx context.Context, name string) ([]string, error) {
	rrs, err := d.query(ctx, name, mdns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if mx, ok := rr.(*mdns.MX); ok {
			out = append(out, rawName(mx.Mx))
		}
	}
	return out, nil
}

// LookupPTR implements Resolver.
func (d *DNS) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	arpa, err := mdns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return nil, fmt.Errorf("reverse name of %s: %w", ip, err)
	}
	rrs, err := d.query(ctx, rawName(arpa), mdns.TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if p, ok := rr.(*mdns.PTR); ok {
			out = append(out, rawName(p.Ptr))
		}
	}
	return out, nil
}

// query asks for the records of one type and returns those of that type,
// or an error wrapping ErrNotFound when there are none.
func (d *DNS) query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	fqdn := presentationName(name)
	if _, ok := mdns.IsDomainName(fqdn); !ok || name == "" {
		// A name DNS cannot carry (an empty label, a label over 63
		// octets) has no records.
		return nil, fmt.Errorf("%s: invalid name: %w", name, ErrNotFound)
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	q := new(mdns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.SetEdns0(1232, false)
	udp := &mdns.Client{Net: "udp", Timeout: timeout}
	reply, _, err := udp.ExchangeContext(ctx, q, d.Server)
	if err == nil && reply.Truncated {
		tcp := &mdns.Client{Net: "tcp", Timeout: timeout}
		reply, _, err = tcp.ExchangeContext(ctx, q, d.Server)
	}
	typ := mdns.TypeToString[qtype]
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, typ, err)
	}
	switch reply.Rcode {
	case mdns.RcodeSuccess:
	case mdns.RcodeNameError:
		return nil, fmt.Errorf("%s %s: NXDOMAIN: %w", name, typ, ErrNotFound)
	default:
		return nil, fmt.Errorf("%s %s: server answered %s", name, typ, mdns.RcodeToString[reply.Rcode])
	}
	var rrs []mdns.RR
	for _, rr := range reply.Answer {
		if rr.Header().Rrtype == qtype {
			rrs = append(rrs, rr)
		}
	}
	if len(rrs) == 0 {
		return nil, fmt.Errorf("%s %s: no records: %w", name, typ, ErrNotFound)
	}
	return rrs, nil
}

// presentationName turns a raw name into the escaped, fully qualified form
// miekg/dns takes: every octet other than a letter, digit, hyphen or
// underscore becomes \DDD, so that names made by macros (with spaces,
// colons or slashes in them) are asked exactly as written.
func presentationName(name string) string {
	name = strings.TrimSuffix(name, ".")
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.' || c == '-' || c == '_' || c == '*' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	b.WriteByte('.')
	return b.String()
}

// rawName turns a name in presentation form into raw text without the
// trailing dot.
func rawName(name string) string {
	return strings.TrimSuffix(unescape(name), ".")
}

// unescape undoes the \DDD and \X escapes of miekg/dns presentation form.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			b.WriteByte((s[i+1]-'0')*100 + (s[i+2]-'0')*10 + (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
