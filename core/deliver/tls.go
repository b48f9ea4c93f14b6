package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"corriere/core/dane"
	"corriere/core/mtasts"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/smtpclient"
	"corriere/core/tlsrpt"
)

// TLSReporter receives the outcome of every session opened under a DANE or
// MTA-STS policy, for TLS-RPT; *tlsrpt.Recorder implements it.
type TLSReporter interface {
	Record(r tlsrpt.Result)
}

// auth is how a session's peer was authenticated.
type auth int

const (
	// authNone: opportunistic STARTTLS, or clear text.
	authNone auth = iota
	// authAny: TLS is required, but any certificate will do (DANE with
	// only unusable TLSA records, RFC 7672 section 2.2).
	authAny
	// authWebPKI: TLS with a certificate valid for the host under the
	// certificate authorities (MTA-STS, required).
	authWebPKI
	// authDANE: TLS with a certificate matching the host's TLSA records.
	authDANE
)

// hostPolicy is what one MX host's session must achieve.
type hostPolicy struct {
	// name is the policy named in replies and logs: "dane", "mta-sts
	// enforce", "mta-sts testing", "required", "opportunistic".
	name string
	auth auth
	// testing: the session is opportunistic, but checked against the
	// MTA-STS policy and reported.
	testing bool
	records []dane.Record
	sts     *mtasts.Policy
}

// domainPolicy is what the route's TLS policy and the recipient domain's
// publications ask of a delivery, before each MX host is looked at.
type domainPolicy struct {
	mode      policy.TLSPolicy
	domain    string
	sts       *mtasts.Policy
	secureMX  bool
	daneError error
}

// PolicyError is a delivery that a TLS policy stopped: the MX host does not
// offer STARTTLS, its certificate does not verify, or it is not one the
// policy allows. It carries the reply the queue records in the event and
// the DSN: 451 with enhanced status 4.7.5 (cryptographic failure) or 4.7.10
// (encryption needed), so the mail waits and is never sent in clear.
type PolicyError struct {
	// Policy names the policy: "dane", "mta-sts enforce", "required"...
	Policy string
	// Host is the MX host.
	Host string
	// Result is the RFC 8460 result type.
	Result string
	// Err is the cause.
	Err error
}

// Error says which policy stopped which host, and why.
func (e *PolicyError) Error() string {
	return fmt.Sprintf("TLS policy %s: %s: %v; the mail waits and is not sent in clear", e.Policy, e.Host, e.Err)
}

// Unwrap returns the cause.
func (e *PolicyError) Unwrap() error { return e.Err }

// asClientError wraps e as the *smtpclient.Error of a refused STARTTLS
// stage, so the queue records its reply and stage like a server's.
func (e *PolicyError) asClientError() error {
	status := "4.7.5"
	if e.Result == tlsrpt.ResultStartTLSNotSupported {
		status = "4.7.10"
	}
	return &smtpclient.Error{Stage: smtpclient.StageStartTLS, Reply: reply.New(451, status, e.Error()), Err: policyCause{e}}
}

// policyCause is a PolicyError inside the *smtpclient.Error whose reply
// already says everything but the cause: it prints only the cause, and
// errors.As still finds the PolicyError.
type policyCause struct{ e *PolicyError }

func (c policyCause) Error() string { return c.e.Err.Error() }
func (c policyCause) Unwrap() error { return c.e }

// daneCacheTTL is how long a DANE lookup result (a failure included) is
// reused, by dials and by the reuse checks of open sessions, so that a
// busy domain does not cost a TLSA query per message.
const daneCacheTTL = 5 * time.Minute

// daneEntry is a cached DANE lookup.
type daneEntry struct {
	records []dane.Record
	secure  bool
	err     error
	until   time.Time
}

// daneCache remembers DANE lookups briefly.
type daneCache struct {
	mu sync.Mutex
	m  map[string]daneEntry
}

// domainPolicy works out what the route's policy and the domain's
// publications ask for. A failed MTA-STS fetch is reported when report is
// set (once per dial, not for the reuse checks of open sessions).
func (t *Transport) domainPolicy(ctx context.Context, tg tlsTarget, report bool) (*domainPolicy, error) {
	dp := &domainPolicy{mode: tg.mode, domain: tg.domain}
	if dp.mode == policy.TLSOpportunistic {
		return dp, nil
	}
	if t.opts.DANE != nil && dp.mode != policy.TLSMTASTS {
		e := t.daneLookup("mx:"+tg.domain, func() daneEntry {
			secure, err := t.opts.DANE.SecureMX(ctx, tg.domain)
			return daneEntry{secure: secure, err: err}
		})
		dp.secureMX, dp.daneError = e.secure, e.err
	}
	if t.opts.MTASTS != nil && dp.mode != policy.TLSDANE {
		p, err := t.opts.MTASTS.Lookup(ctx, tg.domain)
		dp.sts = p
		if err != nil && report {
			t.reportFetchError(tg, err)
		}
	}
	switch {
	case dp.mode == policy.TLSMTASTS && dp.sts == nil:
		return nil, &PolicyError{Policy: string(dp.mode), Host: tg.domain, Result: tlsrpt.ResultSTSPolicyFetchError,
			Err: errors.New("the route requires MTA-STS and the domain has no valid policy")}
	case dp.mode == policy.TLSDANE && t.opts.DANE == nil:
		return nil, &PolicyError{Policy: string(dp.mode), Host: tg.domain, Result: tlsrpt.ResultDANERequired,
			Err: errors.New("the route requires DANE and no validating resolver is configured")}
	case dp.mode == policy.TLSDANE && !dp.secureMX:
		err := dp.daneError
		if err == nil {
			err = errors.New("the domain's MX records are not DNSSEC-signed")
		}
		return nil, &PolicyError{Policy: string(dp.mode), Host: tg.domain, Result: tlsrpt.ResultDANERequired, Err: err}
	}
	return dp, nil
}

// host works out what the session with one MX host must achieve. With an
// error it may still return the policy the host failed, for the report.
func (t *Transport) host(ctx context.Context, dp *domainPolicy, host string) (*hostPolicy, error) {
	if dp.mode == policy.TLSOpportunistic {
		return &hostPolicy{name: string(policy.TLSOpportunistic)}, nil
	}
	if dp.secureMX {
		e := t.daneLookup("tlsa:"+host, func() daneEntry {
			recs, err := t.opts.DANE.TLSA(ctx, host)
			return daneEntry{records: recs, err: err}
		})
		if e.err != nil {
			// RFC 7672 section 2.2: a TLSA lookup that fails without an
			// authenticated denial makes the host unusable.
			return &hostPolicy{name: "dane", auth: authDANE}, &PolicyError{Policy: "dane", Host: host, Result: tlsrpt.ResultDNSSECInvalid, Err: e.err}
		}
		if len(e.records) > 0 {
			hp := &hostPolicy{name: "dane", auth: authDANE, records: e.records}
			if !anyUsable(e.records) {
				hp.auth = authAny
			}
			return hp, nil
		}
	}
	if dp.mode == policy.TLSDANE {
		return nil, &PolicyError{Policy: string(dp.mode), Host: host, Result: tlsrpt.ResultDANERequired,
			Err: errors.New("the route requires DANE and the host has no authenticated TLSA records")}
	}
	if p := dp.sts; p != nil {
		enforce := p.Mode == mtasts.Enforce || dp.mode == policy.TLSMTASTS
		name := "mta-sts " + string(p.Mode)
		if enforce && p.Mode != mtasts.Enforce {
			name = "mta-sts (enforced by the route)"
		}
		if enforce && !p.Matches(host) {
			return &hostPolicy{name: name, auth: authWebPKI, sts: p}, &PolicyError{Policy: name, Host: host, Result: tlsrpt.ResultValidationFailure,
				Err: fmt.Errorf("not one of the MTA-STS policy's mx patterns %s", strings.Join(p.MX, ", "))}
		}
		if enforce {
			return &hostPolicy{name: name, auth: authWebPKI, sts: p}, nil
		}
		if dp.mode == policy.TLSRequired {
			return &hostPolicy{name: string(policy.TLSRequired), auth: authWebPKI, sts: p}, nil
		}
		return &hostPolicy{name: name, testing: true, sts: p}, nil
	}
	if dp.mode == policy.TLSRequired {
		return &hostPolicy{name: string(policy.TLSRequired), auth: authWebPKI}, nil
	}
	return &hostPolicy{name: string(policy.TLSAuto)}, nil
}

// anyUsable reports whether one of records can authenticate an SMTP
// server.
func anyUsable(records []dane.Record) bool {
	for _, r := range records {
		if r.Usable() {
			return true
		}
	}
	return false
}

// daneLookup returns the cached result for key, or runs lookup and caches
// it.
func (t *Transport) daneLookup(key string, lookup func() daneEntry) daneEntry {
	now := t.nowFun()
	t.dane.mu.Lock()
	e, ok := t.dane.m[key]
	t.dane.mu.Unlock()
	if ok && now.Before(e.until) {
		return e
	}
	e = lookup()
	e.until = now.Add(daneCacheTTL)
	t.dane.mu.Lock()
	if len(t.dane.m) >= daneCacheSweep {
		// Sending to many domains: forget the expired entries, so the
		// cache holds only what the last few minutes looked up.
		for k, old := range t.dane.m {
			if !now.Before(old.until) {
				delete(t.dane.m, k)
			}
		}
	}
	t.dane.m[key] = e
	t.dane.mu.Unlock()
	return e
}

// daneCacheSweep is the size of the DANE cache past which an insertion
// first removes the expired entries.
const daneCacheSweep = 10000

// clientOptions sets the TLS options of a dial under hp.
func (t *Transport) clientOptions(opts *smtpclient.Options, hp *hostPolicy, host string) {
	switch hp.auth {
	case authNone:
		opts.TLSMode = smtpclient.TLSOpportunistic
	case authAny:
		opts.TLSMode = smtpclient.TLSRequired
		opts.TLSVerify = func(tls.ConnectionState) error { return nil }
	case authWebPKI:
		opts.TLSMode = smtpclient.TLSRequired
	case authDANE:
		opts.TLSMode = smtpclient.TLSRequired
		records, now := hp.records, t.nowFun
		opts.TLSVerify = func(cs tls.ConnectionState) error { return dane.Verify(cs, host, records, now()) }
	}
}

// policyFailure turns the failure of a dial under an enforcing hp into a
// PolicyError, when TLS is what failed.
func policyFailure(hp *hostPolicy, host string, err error) (*PolicyError, bool) {
	var ce *smtpclient.Error
	if hp.auth == authNone || !errors.As(err, &ce) || ce.Stage != smtpclient.StageStartTLS {
		return nil, false
	}
	result := tlsrpt.ResultValidationFailure
	switch {
	case errors.Is(err, smtpclient.ErrTLSUnavailable):
		result = tlsrpt.ResultStartTLSNotSupported
	case errors.Is(err, dane.ErrMismatch):
		result = tlsrpt.ResultTLSAInvalid
	default:
		result = certResult(err, result)
	}
	cause := ce.Err
	if cause == nil {
		cause = ce
	}
	return &PolicyError{Policy: hp.name, Host: host, Result: result, Err: cause}, true
}

// certResult names the RFC 8460 result type of a certificate error, or
// returns def.
func certResult(err error, def string) string {
	var he x509.HostnameError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &he):
		return tlsrpt.ResultCertHostMismatch
	case errors.As(err, &ua):
		return tlsrpt.ResultCertNotTrusted
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return tlsrpt.ResultCertExpired
	}
	return def
}

// checkTesting checks a session opened under an MTA-STS testing policy as
// enforce mode would have, and returns the failure to report, or "".
func (t *Transport) checkTesting(c *smtpclient.Client, hp *hostPolicy, host string) (result string, reason string) {
	if !hp.sts.Matches(host) {
		return tlsrpt.ResultValidationFailure, "MX host not in the policy's mx patterns"
	}
	cs, ok := c.TLS()
	if !ok {
		return tlsrpt.ResultStartTLSNotSupported, "no STARTTLS"
	}
	if len(cs.PeerCertificates) == 0 {
		return tlsrpt.ResultCertNotTrusted, "no certificate"
	}
	var roots *x509.CertPool
	if t.opts.Client.TLSConfig != nil {
		roots = t.opts.Client.TLSConfig.RootCAs
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: strings.TrimSuffix(host, "."), Roots: roots, Intermediates: inter, CurrentTime: t.nowFun(),
	})
	if err != nil {
		return certResult(err, tlsrpt.ResultValidationFailure), err.Error()
	}
	return "", ""
}

// tlsTarget is the part of a queue.Target the TLS policy reads.
type tlsTarget struct {
	domain, source string
	mode           policy.TLSPolicy
}

// report records a session's outcome under hp, when hp is a published
// policy (DANE or MTA-STS).
func (t *Transport) report(tg tlsTarget, hp *hostPolicy, host, remote, failure, reason string) {
	if t.opts.Reporter == nil || hp == nil {
		return
	}
	r := tlsrpt.Result{At: t.nowFun(), Domain: tg.domain, MXHost: host, SendingIP: tg.source, ReceivingIP: remote, Failure: failure, Reason: reason}
	switch {
	case hp.auth == authDANE || hp.auth == authAny && len(hp.records) > 0:
		r.PolicyType = tlsrpt.PolicyTLSA
		for _, rec := range hp.records {
			r.Policy = append(r.Policy, rec.String())
		}
	case hp.sts != nil:
		r.PolicyType = tlsrpt.PolicySTS
		r.Policy = strings.Split(strings.TrimSpace(strings.ReplaceAll(hp.sts.String(), "\r", "")), "\n")
		r.MXPatterns = hp.sts.MX
	default:
		return
	}
	t.opts.Reporter.Record(r)
}

// reportFetchError records a failed MTA-STS policy fetch.
func (t *Transport) reportFetchError(tg tlsTarget, err error) {
	var fe *mtasts.FetchError
	if t.opts.Reporter == nil || !errors.As(err, &fe) {
		return
	}
	t.opts.Reporter.Record(tlsrpt.Result{At: t.nowFun(), Domain: tg.domain, PolicyType: tlsrpt.PolicySTS,
		SendingIP: tg.source, Failure: fe.Result, Reason: fe.Err.Error()})
}
