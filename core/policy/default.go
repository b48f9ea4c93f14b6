package policy

import (
	"context"
	"hash/fnv"
	"strings"

	"corriere/core/event"
	"corriere/core/message"
)

// Source is an egress IP the node may bind, with the name it announces.
type Source struct {
	// IP is the address to bind.
	IP string
	// Helo is the EHLO name for this IP; it should resolve back to IP
	// (forward-confirmed reverse DNS).
	Helo string
}

// Default is the plain Go policy: correct, conservative, and free of
// provider knowledge. It serves when no Lua policy is loaded and is the
// reference the Lua defaults are measured against.
type Default struct {
	// Sources are the egress IPs to spread traffic over; empty lets the
	// system pick the source address.
	Sources []Source
	// Limits are returned by Shape for every provider. The default value is
	// DefaultLimits.
	Limits *Limits
}

// DefaultLimits are polite limits for an unknown receiver.
var DefaultLimits = Limits{
	MaxConnections:           10,
	MaxMessagesPerConnection: 100,
	MaxRecipientsPerMessage:  50,
}

var _ Policy = (*Default)(nil)

// Classify marks list traffic as newsletters and everything else as
// transactional, owned by the authenticated tenant.
func (d *Default) Classify(_ context.Context, m *message.Message) (Classification, error) {
	c := Classification{Tenant: m.Tenant, Class: message.Transactional}
	prec := strings.ToLower(strings.TrimSpace(m.Header.Get("Precedence")))
	if prec == "bulk" || prec == "list" || m.Header.Has("List-Id") || m.Header.Has("List-Unsubscribe") {
		c.Class = message.Newsletter
	}
	return c, nil
}

// Rewrite leaves the message as it is.
func (d *Default) Rewrite(context.Context, *message.Message) error { return nil }

// Provider returns the last two labels of the MX host, so that every MX of
// one operator (mx1.example.net, mx2.example.net) shares one provider.
func (d *Default) Provider(mxHost string) string {
	return RegistrableDomain(mxHost)
}

// RegistrableDomain approximates the registrable part of a host name: its
// last two labels, or three when the second-level label is a short generic
// one such as "co" in "mail.example.co.uk".
func RegistrableDomain(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	labels := strings.Split(host, ".")
	n := 2
	if len(labels) >= 3 {
		switch labels[len(labels)-2] {
		case "co", "com", "net", "org", "ac", "gov", "edu":
			n = 3
		}
	}
	if len(labels) <= n {
		return host
	}
	return strings.Join(labels[len(labels)-n:], ".")
}

// Route keeps the same kind of traffic from the same tenant to the same
// provider on the same source IP (a stable hash), as receivers build
// reputation per IP and traffic kind.
func (d *Default) Route(_ context.Context, dl *Delivery) (Route, error) {
	if len(d.Sources) == 0 {
		return Route{Pool: "default"}, nil
	}
	h := fnv.New32a()
	h.Write([]byte(dl.Message.Tenant))
	h.Write([]byte{0})
	h.Write([]byte(dl.Message.Class))
	h.Write([]byte{0})
	h.Write([]byte(dl.Provider))
	s := d.Sources[h.Sum32()%uint32(len(d.Sources))]
	return Route{Pool: "default", Source: s.IP, Helo: s.Helo}, nil
}

// Shape returns the same limits for every provider and source, and no
// provider-wide limits.
func (d *Default) Shape(_ context.Context, _ string, source string) (Limits, error) {
	if source == AllSources {
		return Limits{}, nil
	}
	if d.Limits != nil {
		return *d.Limits, nil
	}
	return DefaultLimits, nil
}

// OnResponse applies RFC 5321 reply classes: 2xx delivered, 4xx (and network
// trouble) retried, 5xx bounced.
func (d *Default) OnResponse(_ context.Context, a *Attempt) (Verdict, error) {
	r := a.Reply
	switch {
	case r.Success():
		return Verdict{Action: Deliver}, nil
	case r.Permanent():
		cat := CategoryForStatus(r.EffectiveStatus().String())
		return Verdict{Action: Bounce, Category: cat, Scope: ScopeRecipient, Hard: IsHardCategory(cat)}, nil
	default:
		v := Verdict{Action: Retry, Category: CategoryForStatus(r.EffectiveStatus().String()), Scope: ScopeRecipient}
		if a.Network {
			v.Category = event.CategoryNetworkError
		}
		return v, nil
	}
}

// OnBounce classifies by enhanced status code alone.
func (d *Default) OnBounce(_ context.Context, r *BounceReport) (BounceVerdict, error) {
	if r.Kind == "arf" {
		return BounceVerdict{Category: event.CategoryFeedback, Hard: true}, nil
	}
	cat := CategoryForStatus(r.Status)
	return BounceVerdict{Category: cat, Hard: IsHardCategory(cat)}, nil
}

// CategoryForStatus maps an enhanced status code to a bounce category of
// the Sisimai taxonomy, using only the code (RFC 3463 and its registry).
func CategoryForStatus(status string) event.Category {
	if len(status) < 5 {
		return event.CategoryUndefined
	}
	switch status[2:] {
	case "1.0", "1.1", "1.3", "1.6":
		return event.CategoryUserUnknown
	case "1.2", "4.4":
		return event.CategoryHostUnknown
	case "1.8":
		return event.CategoryRejected
	case "2.1":
		return event.CategorySuspend
	case "2.2", "2.0":
		return event.CategoryMailboxFull
	case "2.3", "3.4":
		return event.CategoryMesgTooBig
	case "3.0", "3.1", "3.2", "3.5":
		return event.CategorySystemError
	case "4.1", "4.2", "4.3":
		return event.CategoryNetworkError
	case "4.6", "4.7":
		return event.CategoryExpired
	case "5.3":
		return event.CategoryTooManyConn
	case "6.0", "6.1", "6.2", "6.3", "6.4", "6.5":
		return event.CategoryContentError
	case "7.0", "7.1":
		return event.CategoryBlocked
	case "7.26", "7.27", "7.7", "7.20", "7.21", "7.22", "7.23", "7.24", "7.25":
		return event.CategoryAuthFailure
	case "7.28":
		return event.CategoryTooManyConn
	case "7.5", "7.6", "7.8", "7.9", "7.10", "7.11":
		return event.CategorySecurityError
	}
	return event.CategoryUndefined
}

// IsHardCategory reports whether a category means the address should not be
// mailed again; such bounces (and complaints) put it on the tenant's
// suppression list. They are the categories of the Sisimai taxonomy that
// say the address itself will never work:
//
//   - userunknown: the mailbox does not exist;
//   - hostunknown: the domain does not exist or has no host to deliver to;
//   - hasmoved: the mailbox is gone, sometimes with a new address given;
//   - notaccept: the domain accepts no mail at all (null MX, RFC 7505);
//   - feedback: the recipient complained.
//
// Left out on purpose: suspend (a disabled account may come back),
// mailboxfull, exceedlimit, systemfull and expired (temporary by nature),
// and blocked, spamdetected, policyviolation, rejected, filtered,
// badreputation, contenterror and the like, which judge the sender, the
// source IP or the message and say nothing about the address.
func IsHardCategory(category event.Category) bool {
	switch category {
	case event.CategoryUserUnknown, event.CategoryHostUnknown, event.CategoryHasMoved, event.CategoryNotAccept, event.CategoryFeedback:
		return true
	}
	return false
}
