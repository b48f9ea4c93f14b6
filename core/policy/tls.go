package policy

import "fmt"

// TLSPolicy is how a delivery protects its SMTP session, as the route hook
// chooses it per provider, tenant or class.
type TLSPolicy string

// The TLS policies a route may choose.
const (
	// TLSAuto applies whatever the recipient domain publishes: DANE for MX
	// hosts with authenticated TLSA records, otherwise the domain's MTA-STS
	// policy, otherwise opportunistic STARTTLS. It is the default ("").
	TLSAuto TLSPolicy = "auto"
	// TLSOpportunistic uses STARTTLS when offered, without checking the
	// certificate, and ignores DANE and MTA-STS.
	TLSOpportunistic TLSPolicy = "opportunistic"
	// TLSRequired delivers only over TLS with a certificate valid for the
	// MX host: authenticated by DANE where the host has TLSA records, by
	// the certificate authorities otherwise.
	TLSRequired TLSPolicy = "required"
	// TLSDANE delivers only to MX hosts authenticated by DANE; mail to a
	// domain without TLSA records waits.
	TLSDANE TLSPolicy = "dane"
	// TLSMTASTS enforces the domain's MTA-STS policy even when it is in
	// testing mode; mail to a domain without a policy waits.
	TLSMTASTS TLSPolicy = "mta-sts"
)

// ParseTLSPolicy returns the policy named s; "" is TLSAuto.
func ParseTLSPolicy(s string) (TLSPolicy, error) {
	switch p := TLSPolicy(s); p {
	case "":
		return TLSAuto, nil
	case TLSAuto, TLSOpportunistic, TLSRequired, TLSDANE, TLSMTASTS:
		return p, nil
	}
	return "", fmt.Errorf("tls %q; want auto, opportunistic, required, dane or mta-sts", s)
}
