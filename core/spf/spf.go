package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Result is the outcome of an SPF check (RFC 7208 section 2.6).
type Result string

// The results of check_host().
const (
	// None: the domain is not a valid name, or publishes no SPF record.
	None Result = "none"
	// Neutral: the record makes no assertion about the IP ("?" or no match).
	Neutral Result = "neutral"
	// Pass: the IP is authorised.
	Pass Result = "pass"
	// Fail: the IP is not authorised.
	Fail Result = "fail"
	// SoftFail: the IP is probably not authorised ("~").
	SoftFail Result = "softfail"
	// TempError: a DNS failure; a later check may succeed.
	TempError Result = "temperror"
	// PermError: the record is broken or goes over a processing limit.
	PermError Result = "permerror"
)

// The processing limits of RFC 7208 section 4.6.4.
const (
	// MaxLookups is how many terms causing DNS queries one evaluation may
	// use.
	MaxLookups = 10
	// MaxVoidLookups is how many of those may find nothing.
	MaxVoidLookups = 2
	// maxNames bounds the MX names of "mx" and the PTR names of "ptr" and
	// %{p}.
	maxNames = 10
)

// Checker evaluates SPF records.
type Checker struct {
	// Resolver answers the DNS queries. Required.
	Resolver Resolver
	// Receiver is the %{r} of explanations: the checking host's name. The
	// default value is "unknown".
	Receiver string
	// DefaultExplanation is the explanation of a fail whose record gives
	// none, or whose exp cannot be used. The default value is empty.
	DefaultExplanation string
	// Now gives %{t}. The default value is time.Now.
	Now func() time.Time
}

// Outcome is the result of a check and how it came about.
type Outcome struct {
	// Result is the SPF result.
	Result Result `json:"result"`
	// Domain is the domain checked first.
	Domain string `json:"domain"`
	// Trail is the path to the deciding term, one step per record:
	// "example.org: include:_spf.example.net", then
	// "_spf.example.net: ip4:192.0.2.0/24". A step "example.org: (no
	// match, default neutral)" says no mechanism matched.
	Trail []string `json:"trail,omitempty"`
	// Mechanism is the deciding term of the innermost record of Trail, as
	// written; empty when none matched or an error ended the evaluation.
	Mechanism string `json:"mechanism,omitempty"`
	// Explanation is the expanded exp of a fail.
	Explanation string `json:"explanation,omitempty"`
	// Reason says why the result is a permerror, temperror or none.
	Reason string `json:"reason,omitempty"`
	// Lookups and VoidLookups are what the evaluation used of MaxLookups
	// and MaxVoidLookups.
	Lookups     int `json:"lookups"`
	VoidLookups int `json:"void_lookups"`
}

// Check runs check_host() for a message from ip with envelope sender (MAIL
// FROM) sender, sent after HELO helo. An empty sender checks the HELO
// identity, as for bounces (section 2.3).
func (c *Checker) Check(ctx context.Context, ip netip.Addr, sender, helo string) Outcome {
	local, domain := "postmaster", helo
	if sender != "" {
		at := strings.LastIndexByte(sender, '@')
		if at < 0 {
			domain = sender
		} else {
			domain = sender[at+1:]
			if at > 0 {
				local = sender[:at]
			}
		}
	}
	e := &evaluation{
		c:      c,
		ctx:    ctx,
		ip:     ip.Unmap(),
		local:  local,
		domain: domain,
		helo:   helo,
	}
	out := Outcome{Domain: domain}
	r := e.checkHost(domain)
	out.Result, out.Explanation, out.Trail = r.result, r.explanation, r.trail
	if r.err != nil {
		out.Reason = r.err.Error()
	}
	out.Mechanism = r.mechanism
	out.Lookups, out.VoidLookups = e.lookups, e.voids
	return out
}

// evaluation is the state of one Check: the identity and the limits'
// counters, shared by every record it reaches through include and redirect.
type evaluation struct {
	c      *Checker
	ctx    context.Context
	ip     netip.Addr
	local  string
	domain string // the sender's domain, %{o}
	helo   string

	lookups, voids int
}

// hostResult is the answer of check_host() for one domain.
type hostResult struct {
	result      Result
	explanation string
	trail       []string
	// mechanism is the deciding term of the innermost record, "" when
	// none matched.
	mechanism string
	err       error
}

func permerror(err error) hostResult { return hostResult{result: PermError, err: err} }
func temperror(err error) hostResult { return hostResult{result: TempError, err: err} }

// errTemp marks a DNS failure that ends the evaluation in temperror.
var errTemp = errors.New("DNS failure")

// checkHost is check_host() of section 4 for domain.
func (e *evaluation) checkHost(domain string) hostResult {
	domain = strings.TrimSuffix(domain, ".")
	if !validDomain(domain) {
		return hostResult{result: None, err: fmt.Errorf("%q is not a domain that can publish SPF", domain)}
	}
	txts, err := e.c.Resolver.LookupTXT(e.ctx, domain)
	switch {
	case errors.Is(err, ErrNotFound):
		return hostResult{result: None, err: fmt.Errorf("%s publishes no SPF record", domain)}
	case err != nil:
		return temperror(fmt.Errorf("%s: TXT lookup: %w", domain, err))
	}
	var spf []string
	for _, t := range txts {
		if isSPF(t) {
			spf = append(spf, t)
		}
	}
	switch len(spf) {
	case 0:
		return hostResult{result: None, err: fmt.Errorf("%s publishes no SPF record", domain)}
	case 1:
	default:
		return permerror(fmt.Errorf("%s publishes %d SPF records; it must publish one", domain, len(spf)))
	}
	rec, err := parseRecord(spf[0])
	if err != nil {
		return permerror(fmt.Errorf("%s: %w", domain, err))
	}
	for _, m := range rec.mechanisms {
		match, inner, err := e.evalMechanism(domain, m)
		if err != nil {
			r := permerror(fmt.Errorf("%s: %s: %w", domain, m.text, err))
			if errors.Is(err, errTemp) {
				r.result = TempError
			}
			var incl *includeError
			if errors.As(err, &incl) {
				r.trail = append([]string{domain + ": " + m.text}, incl.trail...)
			}
			return r
		}
		if !match {
			continue
		}
		r := hostResult{result: m.qual.result(), trail: []string{domain + ": " + m.text}, mechanism: m.text}
		if inner != nil {
			r.trail, r.mechanism = append(r.trail, inner.trail...), inner.mechanism
		}
		if r.result == Fail {
			r.explanation = e.explain(domain, rec.exp)
		}
		return r
	}
	if rec.redirect != nil {
		if err := e.countLookup(); err != nil {
			return permerror(fmt.Errorf("%s: redirect: %w", domain, err))
		}
		target, err := e.expandDomain(rec.redirect, domain)
		if err != nil {
			return permerror(fmt.Errorf("%s: redirect: %w", domain, err))
		}
		r := e.checkHost(target)
		if r.result == None {
			return permerror(fmt.Errorf("%s: redirect=%s: %w", domain, target, r.err))
		}
		r.trail = append([]string{domain + ": redirect=" + target}, r.trail...)
		return r
	}
	return hostResult{result: Neutral, trail: []string{domain + ": (no match, default neutral)"}}
}

// includeError is the error of an include whose target ended in an error,
// with the target's trail.
type includeError struct {
	err   error
	trail []string
}

func (e *includeError) Error() string { return e.err.Error() }
func (e *includeError) Unwrap() error { return e.err }

// result maps a qualifier to the result of its mechanism's match.
func (q qualifier) result() Result {
	switch q {
	case '-':
		return Fail
	case '~':
		return SoftFail
	case '?':
		return Neutral
	default:
		return Pass
	}
}

// countLookup counts one term that queries DNS against MaxLookups.
func (e *evaluation) countLookup() error {
	e.lookups++
	if e.lookups > MaxLookups {
		return fmt.Errorf("more than %d DNS-querying terms (RFC 7208 section 4.6.4)", MaxLookups)
	}
	return nil
}

// void counts a lookup that found nothing against MaxVoidLookups.
func (e *evaluation) void() error {
	e.voids++
	if e.voids > MaxVoidLookups {
		return fmt.Errorf("more than %d lookups found nothing (RFC 7208 section 4.6.4)", MaxVoidLookups)
	}
	return nil
}

// evalMechanism reports whether m matches, with the result of the included
// record that matched for an include. An error wrapping errTemp is a
// temperror, any other a permerror.
func (e *evaluation) evalMechanism(domain string, m mechanism) (bool, *hostResult, error) {
	if m.kind != "include" {
		match, err := e.evalLocal(domain, m)
		return match, nil, err
	}
	target, err := e.target(domain, m)
	if err != nil {
		return false, nil, err
	}
	r := e.checkHost(target)
	switch r.result {
	case Pass:
		return true, &r, nil
	case Fail, SoftFail, Neutral:
		return false, nil, nil
	case TempError:
		return false, nil, &includeError{err: fmt.Errorf("%w: %w", errTemp, r.err), trail: r.trail}
	case None:
		return false, nil, &includeError{err: fmt.Errorf("include:%s: %w", target, r.err)}
	default:
		return false, nil, &includeError{err: r.err, trail: r.trail}
	}
}

// target counts a DNS-querying term and returns the domain it queries.
func (e *evaluation) target(domain string, m mechanism) (string, error) {
	if err := e.countLookup(); err != nil {
		return "", err
	}
	if m.domain == nil {
		return domain, nil
	}
	return e.expandDomain(m.domain, domain)
}

// evalLocal reports whether a mechanism other than include matches.
func (e *evaluation) evalLocal(domain string, m mechanism) (bool, error) {
	switch m.kind {
	case "all":
		return true, nil
	case "ip4", "ip6":
		return m.net.Contains(e.ip), nil
	}
	target, err := e.target(domain, m)
	if err != nil {
		return false, err
	}
	switch m.kind {
	case "exists":
		ips, err := e.c.Resolver.LookupAddr(e.ctx, target, false)
		if err := e.lookupError(err); err != nil {
			return false, err
		}
		return len(ips) > 0, nil
	case "a":
		return e.matchAddrs(target, m)
	case "mx":
		names, err := e.c.Resolver.LookupMX(e.ctx, target)
		if err := e.lookupError(err); err != nil {
			return false, err
		}
		if len(names) > maxNames {
			return false, fmt.Errorf("%s has %d MX records, more than %d (RFC 7208 section 4.6.4)", target, len(names), maxNames)
		}
		for _, name := range names {
			if ok, err := e.matchAddrs(name, m); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case "ptr":
		for _, name := range e.validatedNames() {
			if strings.EqualFold(name, target) || hasSuffixFold(name, "."+target) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown mechanism %q", m.kind)
}

// lookupError turns a lookup's error into the evaluation's: nil for
// success, nil after counting a void lookup, errTemp for a DNS failure.
func (e *evaluation) lookupError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return e.void()
	default:
		return fmt.Errorf("%w: %w", errTemp, err)
	}
}

// matchAddrs reports whether an address of name, of the family of the
// connecting IP, is in the mechanism's prefix of the connecting IP.
func (e *evaluation) matchAddrs(name string, m mechanism) (bool, error) {
	v6 := !e.ip.Is4()
	ips, err := e.c.Resolver.LookupAddr(e.ctx, name, v6)
	if err := e.lookupError(err); err != nil {
		return false, err
	}
	bits := m.cidr4
	if v6 {
		bits = m.cidr6
	}
	for _, ip := range ips {
		if p, err := ip.Unmap().Prefix(bits); err == nil && p.Contains(e.ip) {
			return true, nil
		}
	}
	return false, nil
}

// validatedNames returns the PTR names of the connecting IP that resolve
// back to it (section 5.5), at most the first maxNames looked at. DNS
// errors make a name not validated.
func (e *evaluation) validatedNames() []string {
	names, err := e.c.Resolver.LookupPTR(e.ctx, e.ip)
	if err != nil {
		return nil
	}
	if len(names) > maxNames {
		names = names[:maxNames]
	}
	var out []string
	for _, name := range names {
		ips, err := e.c.Resolver.LookupAddr(e.ctx, name, !e.ip.Is4())
		if err != nil {
			continue
		}
		for _, ip := range ips {
			if ip.Unmap() == e.ip {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// expandDomain expands a domain-spec and shortens the result to 253
// octets by dropping labels from the left (section 7.3).
func (e *evaluation) expandDomain(ms macroString, domain string) (string, error) {
	s := strings.TrimSuffix(e.expand(ms, domain), ".")
	for len(s) > 253 {
		dot := strings.IndexByte(s, '.')
		if dot < 0 {
			return "", fmt.Errorf("domain %q is too long", s)
		}
		s = s[dot+1:]
	}
	return s, nil
}

// expand expands a macro-string for the record of domain.
func (e *evaluation) expand(ms macroString, domain string) string {
	var b strings.Builder
	for _, tok := range ms {
		if tok.letter == 0 {
			b.WriteString(tok.literal)
			continue
		}
		b.WriteString(tok.transform(e.macroValue(tok.letter, domain)))
	}
	return b.String()
}

// macroValue is the value of a macro letter (section 7.2).
func (e *evaluation) macroValue(letter byte, domain string) string {
	switch letter {
	case 's':
		return e.local + "@" + e.domain
	case 'l':
		return e.local
	case 'o':
		return e.domain
	case 'd':
		return domain
	case 'i':
		return dottedIP(e.ip)
	case 'p':
		return e.validatedName(domain)
	case 'v':
		if e.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return e.helo
	case 'c':
		return e.ip.String()
	case 'r':
		if e.c.Receiver != "" {
			return e.c.Receiver
		}
		return "unknown"
	case 't':
		now := time.Now
		if e.c.Now != nil {
			now = e.c.Now
		}
		return strconv.FormatInt(now().Unix(), 10)
	}
	return ""
}

// validatedName is %{p}: a validated name of the connecting IP, domain
// itself or a subdomain of it when there is one, "unknown" when there is
// none.
func (e *evaluation) validatedName(domain string) string {
	names := e.validatedNames()
	for _, n := range names {
		if strings.EqualFold(n, domain) {
			return n
		}
	}
	for _, n := range names {
		if hasSuffixFold(n, "."+domain) {
			return n
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return "unknown"
}

// dottedIP is %{i}: an IPv4 address as written, an IPv6 address as 32
// dot-separated nibbles.
func dottedIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789abcdef"
	b := ip.As16()
	out := make([]byte, 0, 63)
	for i, c := range b {
		if i > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[c>>4], '.', hex[c&0xf])
	}
	return string(out)
}

// explain returns the explanation of a fail of domain's record (section
// 6.2), or the default one when the record has no usable exp.
func (e *evaluation) explain(domain string, exp macroString) string {
	if exp == nil {
		return e.c.DefaultExplanation
	}
	target, err := e.expandDomain(exp, domain)
	if err != nil {
		return e.c.DefaultExplanation
	}
	txts, err := e.c.Resolver.LookupTXT(e.ctx, target)
	if err != nil || len(txts) != 1 {
		return e.c.DefaultExplanation
	}
	ms, err := parseMacro(txts[0], true)
	if err != nil {
		return e.c.DefaultExplanation
	}
	return e.expand(ms, domain)
}
