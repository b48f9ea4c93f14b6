package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Resolver finds TXT records and host addresses; *dns.Resolver implements
// it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// FetchError is a failure to get a policy from the policy server: the
// server could not be reached, its certificate did not validate, or it
// served no valid policy. TLS-RPT reports it as sts-policy-fetch-error,
// sts-webpki-invalid or sts-policy-invalid (Result).
type FetchError struct {
	// Domain is the policy domain.
	Domain string
	// Result is the RFC 8460 result type of the failure.
	Result string
	// Err is the cause.
	Err error
}

// Error says which domain's policy could not be had, and why.
func (e *FetchError) Error() string {
	return fmt.Sprintf("mtasts: policy of %s: %s: %v", e.Domain, e.Result, e.Err)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// RFC 8460 result types of policy fetch failures.
const (
	ResultFetchError    = "sts-policy-fetch-error"
	ResultPolicyInvalid = "sts-policy-invalid"
	ResultWebPKIInvalid = "sts-webpki-invalid"
)

// fetcher fetches policy files over HTTPS.
type fetcher struct {
	resolver Resolver
	port     int
	client   *http.Client
}

func newFetcher(o *Options) *fetcher {
	f := &fetcher{resolver: o.Resolver, port: o.Port}
	tr := &http.Transport{
		DialContext:           f.dial,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   o.FetchTimeout,
		ResponseHeaderTimeout: o.FetchTimeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       time.Minute,
	}
	f.client = &http.Client{
		Transport: tr,
		Timeout:   o.FetchTimeout,
		// RFC 8461 section 3.3: HTTP redirects MUST NOT be followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// dial resolves the policy host through the configured resolver and
// connects to its first reachable address on the configured port.
func (f *fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := f.resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), strconv.Itoa(f.port)))
		if err == nil {
			return c, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no address for %s", host)
	}
	return nil, last
}

// fetch gets and parses the policy of domain.
func (f *fetcher) fetch(ctx context.Context, domain string) (*Policy, error) {
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &FetchError{Domain: domain, Result: ResultFetchError, Err: err}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		result := ResultFetchError
		var ce *tls.CertificateVerificationError
		var he x509.HostnameError
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ce) || errors.As(err, &he) || errors.As(err, &ua) {
			result = ResultWebPKIInvalid
		}
		return nil, &FetchError{Domain: domain, Result: result, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &FetchError{Domain: domain, Result: ResultFetchError, Err: fmt.Errorf("GET %s: HTTP %s", url, resp.Status)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, &FetchError{Domain: domain, Result: ResultPolicyInvalid, Err: fmt.Errorf("GET %s: content type %q; want text/plain", url, resp.Header.Get("Content-Type"))}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err != nil {
		return nil, &FetchError{Domain: domain, Result: ResultFetchError, Err: fmt.Errorf("GET %s: %w", url, err)}
	}
	if len(body) > MaxPolicySize {
		return nil, &FetchError{Domain: domain, Result: ResultPolicyInvalid, Err: fmt.Errorf("GET %s: policy larger than %d bytes", url, MaxPolicySize)}
	}
	p, err := Parse(string(body))
	if err != nil {
		return nil, &FetchError{Domain: domain, Result: ResultPolicyInvalid, Err: err}
	}
	return p, nil
}
