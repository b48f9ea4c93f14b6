package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"corriere/core/spf"
)

// Checker checks domains against a Platform.
type Checker struct {
	// Resolver answers every lookup. Required.
	Resolver spf.Resolver
	// Platform is the platform's settings. Required.
	Platform *Platform
	// Hostname is the node's name, offered as the MX of bounce domains
	// that have none.
	Hostname string
	// TTL is the TTL of the records the findings suggest. The default
	// value is 3600.
	TTL int
	// Now stamps reports. The default value is time.Now.
	Now func() time.Time
}

// ErrUnknownTenant is returned for a tenant that rules/tenants does not
// define.
var ErrUnknownTenant = errors.New("dnscheck: unknown tenant")

// ErrNotADomain is returned for a domain to check that is not a domain
// name.
var ErrNotADomain = errors.New("dnscheck: not a domain name")

// validName reports whether d is a domain name mail can come from: at least
// two labels of 1 to 63 letters, digits, hyphens or underscores.
func validName(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Check checks domains with the settings of tenant, or, when tenant is
// empty, of the tenant whose sender_domains hold each domain (the mail of a
// domain no tenant claims is checked as sent with its own envelope sender).
// The bounce and return-path domains of the tenants involved are checked
// first, and reverse DNS of the source IPs once, at the end.
func (c *Checker) Check(ctx context.Context, domains []string, tenant string) (*Report, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var fixed *Tenant
	if tenant != "" {
		t, ok := c.Platform.Tenants[tenant]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownTenant, tenant)
		}
		fixed = &t
	}
	r := &Report{Tenant: tenant, Checked: now().UTC()}
	run := &run{c: c, ctx: ctx, report: r, spf: map[string]*spfResult{}, dkim: map[string]bool{}}
	type sender struct {
		domain, envelope string
		tenant           *Tenant
	}
	var senders []sender
	var envelopes []string
	if fixed != nil {
		// The tenant's own bounce and return-path domains, even when no
		// domain checked uses them (a re-enveloping account may have no
		// sender_domains at all).
		for _, e := range []string{fixed.EnvelopeDomain(""), fixed.ReturnPathDomain} {
			if e != "" && !slices.Contains(envelopes, e) {
				envelopes = append(envelopes, e)
			}
		}
	}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if !validName(d) {
			return nil, fmt.Errorf("%w: %q", ErrNotADomain, d)
		}
		r.Domains = append(r.Domains, d)
		t := fixed
		if t == nil {
			if found, ok := c.Platform.TenantOf(d); ok {
				t = &found
			}
		}
		env := t.EnvelopeDomain(d)
		if env != d && !slices.Contains(envelopes, env) {
			envelopes = append(envelopes, env)
		}
		senders = append(senders, sender{d, env, t})
	}
	// Bounce and return-path domains first: DMARC of the sender domains
	// needs their SPF results.
	for _, e := range envelopes {
		run.bounceDomain(e)
	}
	for _, s := range senders {
		run.domain(s.domain, s.envelope, s.tenant)
	}
	run.reverseDNS()
	return r, nil
}

// run is the state of one Check: the report and the results later checks
// reuse (an envelope domain's SPF, a signing domain's DKIM).
type run struct {
	c      *Checker
	ctx    context.Context
	report *Report
	spf    map[string]*spfResult
	dkim   map[string]bool // signing domain → an active key verifies
}

func (r *run) add(f Finding) { r.report.Findings = append(r.report.Findings, f) }

func (r *run) ttl() int {
	if r.c.TTL > 0 {
		return r.c.TTL
	}
	return 3600
}

// domain runs the checks of one sender domain whose mail leaves with
// envelope domain env.
func (r *run) domain(d, env string, t *Tenant) {
	if env == d {
		r.spfFindings(d, "postmaster@"+d)
	} else {
		why := "its return-path domain"
		if t.Reenvelope {
			why = "the re-enveloping bounce domain"
		}
		r.add(Finding{Domain: d, Check: CheckSPF, Subject: "envelope", Status: OK,
			Meaning: fmt.Sprintf("mail From: %s leaves with an envelope sender on %s, %s, so receivers check SPF there (above).", d, env, why)})
	}
	signer := r.dkimFindings(d, t)
	r.dmarcFindings(d, env, signer, t)
	r.mtaSTS(d)
	r.tlsRPT(d)
}

// zoneTXT formats a TXT record as a zone-file line, split into strings of
// at most 255 octets.
func zoneTXT(name string, ttl int, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return fmt.Sprintf("%s. %d IN TXT %s", strings.TrimSuffix(name, "."), ttl, strings.Join(parts, " "))
}

// lookupTXT returns the TXT records of name that start with prefix (in
// any case), and whether the lookup failed temporarily.
func (r *run) lookupTXT(name, prefix string) (recs []string, err error) {
	txts, err := r.c.Resolver.LookupTXT(r.ctx, name)
	if errors.Is(err, spf.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, t := range txts {
		if len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) {
			recs = append(recs, t)
		}
	}
	return recs, nil
}

// tempFinding is the warning of a check that DNS did not let run.
func tempFinding(d string, check Check, subject string, err error) Finding {
	return Finding{Domain: d, Check: check, Subject: subject, Status: Warning,
		Meaning: "the check could not be made because DNS failed; receivers that see the same failure defer or junk the mail.",
		Detail:  err.Error()}
}

// addrsOf returns the A and AAAA addresses of name.
func (r *run) addrsOf(name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var firstErr error
	for _, v6 := range []bool{false, true} {
		ips, err := r.c.Resolver.LookupAddr(r.ctx, name, v6)
		if err != nil && !errors.Is(err, spf.ErrNotFound) && firstErr == nil {
			firstErr = err
		}
		out = append(out, ips...)
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, spf.ErrNotFound) }
