package tenant

import (
	"fmt"
	"strings"
)

// ReturnPath is where a tenant's bounces and complaints come home: the
// domains of the envelope senders its mail leaves with, whose MX is the
// platform's bounce listener.
type ReturnPath struct {
	// Domain is return_path_domain, the tenant's own bounce domain
	// ("bounce.shop.example"): every message of the tenant leaves with a
	// per-recipient VERP envelope sender on it, so that SPF passes for a
	// domain aligned (under relaxed DMARC) with the tenant's From: while
	// late bounces and complaints reach the platform. Empty means none.
	Domain string
	// BounceDomain is bounce_domain, the platform's domain of the envelope
	// sender of re-enveloped mail (Tenant.Reenvelope). Empty means none.
	BounceDomain string
}

// Domains returns the tenant's bounce domains, lower-cased: those the
// bounce listener receives mail for.
func (r ReturnPath) Domains() []string {
	var out []string
	for _, d := range []string{r.Domain, r.BounceDomain} {
		if d != "" {
			out = append(out, strings.ToLower(d))
		}
	}
	return out
}

// maxDomain is the longest domain name (RFC 1035, in presentation form
// without the final dot).
const maxDomain = 253

// CheckDomain returns d lower-cased if it is a plausible host name for an
// envelope sender: dot-separated labels of letters, digits and hyphens,
// at least two of them, none starting or ending with a hyphen. field names
// the setting in the error.
func CheckDomain(field, d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	bad := fmt.Errorf("%s = %q is not a domain name", field, d)
	labels := strings.Split(d, ".")
	if len(d) > maxDomain || len(labels) < 2 {
		return "", bad
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", bad
		}
		for _, c := range []byte(l) {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return "", bad
			}
		}
	}
	return d, nil
}
