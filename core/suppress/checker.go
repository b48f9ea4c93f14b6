package suppress

import (
	"context"
	"fmt"
	"strings"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/reply"
	"corriere/core/tenant"
)

// Suppression modes of tenant.Tenant.SuppressionMode.
const (
	ModeReject = "reject" // refuse at RCPT with 550 5.1.1 (the default)
	ModeDrop   = "drop"   // accept, do not deliver, emit an event
)

// maxReasonInReply keeps the refusal within the 512-octet reply line of
// RFC 5321 section 4.5.3.1.5.
const maxReasonInReply = 160

// Checker consults the list at RCPT TO; it implements
// extension.RecipientCheck.
//
// A suppressed recipient of a tenant in ModeReject (and of an unknown
// tenant, or of relayed mail) is refused with 550 5.1.1 and a sentence
// naming the tenant, the date, the category and the reason, and how to undo
// it; ingest counts the refusal as "suppressed", and the Checker emits an
// event.Suppressed with the reply and no message ID. A suppressed recipient
// of a tenant in ModeDrop gets an extension.Drop: it is accepted and not
// delivered, and ingest emits the event.Suppressed, with the message ID,
// once the message is accepted. So every suppression hit is exactly one
// event.Suppressed; the refusals are, in addition, ingest's rejections.
type Checker struct {
	// List is the suppression list. Required.
	List *List
	// Tenants gives each tenant's SuppressionMode. Nil makes every tenant
	// use ModeReject.
	Tenants tenant.Directory
	// Events receives the refusals' event.Suppressed. May be nil.
	Events *event.Bus
}

// CheckRecipient implements extension.RecipientCheck. A storage error is
// returned as is, which ingest answers with 451 4.3.0.
func (c *Checker) CheckRecipient(_ context.Context, tenantName, rcpt string) error {
	e, ok, err := c.List.Lookup(tenantName, rcpt)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	if c.Tenants != nil {
		if t, ok := c.Tenants.Lookup(tenantName); ok && t.SuppressionMode == ModeDrop {
			return &extension.Drop{Category: e.Category, Reason: dropReason(e)}
		}
	}
	r := RefusalReply(e)
	c.Events.Emit(&event.Event{Type: event.Suppressed, Recipient: e.Address, Tenant: tenantName,
		Category: e.Category, Reason: "refused at RCPT: " + why(e), Reply: r.String()})
	return &extension.Refusal{Reason: "suppressed", Reply: r}
}

// RefusalReply is the answer to RCPT TO for a suppressed recipient, such as
//
//	550 5.1.1 Recipient <x@example.org> is suppressed for tenant acme since
//	2026-11-30: userunknown (550 5.1.1 no such user); remove it with
//	"corriere suppression remove" if this is wrong
//
// (on one line).
func RefusalReply(e Entry) *reply.Reply {
	return reply.New(550, "5.1.1", fmt.Sprintf("Recipient <%s> is suppressed for %s since %s: %s; remove it with \"corriere suppression remove\" if this is wrong",
		e.Address, TenantLabel(e.Tenant), e.Added.Format("2006-01-02"), why(e)))
}

func dropReason(e Entry) string {
	return fmt.Sprintf("suppressed for %s since %s: %s; dropped, as the tenant's suppression mode is %q",
		TenantLabel(e.Tenant), e.Added.Format("2006-01-02"), why(e), ModeDrop)
}

// why is "category (reason)" fit for a reply line: printable ASCII,
// shortened.
func why(e Entry) string {
	cat := string(e.Category)
	if cat == "" {
		cat = e.Source
	}
	if cat == "" {
		cat = "suppressed"
	}
	cat, reason := printable(cat, 40), printable(e.Reason, maxReasonInReply)
	if reason == "" {
		return cat
	}
	return cat + " (" + reason + ")"
}

// printable makes s printable ASCII on one line, at most max octets.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}

var _ extension.RecipientCheck = (*Checker)(nil)
