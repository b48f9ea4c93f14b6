package ingest

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"corriere/core/address"
	"corriere/core/reply"
	"corriere/core/tenant"
)

// A tenant's sender_domains govern every identity a message claims: the
// envelope sender (Mail), the null sender, and the author in From:, which
// receivers show and DKIM signs for. Checking From: at ingest means a
// tenant can never have its mail signed (or displayed) as another
// tenant's domain, whatever the later stages do.

// checkNullSender refuses MAIL FROM:<> from a tenant that has not been
// allowed it (null_sender = true): a null sender gets no bounces, so it
// hides where a message came from.
func (s *Server) checkNullSender(t *tenant.Tenant, client netip.Addr) error {
	if t == nil || t.NullSender {
		return nil
	}
	return s.refuse(client, "", "null_sender_not_allowed", smtpErr(reply.New(553, "5.7.1",
		fmt.Sprintf("Null sender (MAIL FROM:<>) is not allowed for tenant %s", t.Name))), "from", "")
}

// checkAuthor refuses a message whose From: field names a domain the
// tenant may not send from, or cannot be read while the tenant is limited
// to some domains. A message without From: claims no author and passes.
func (s *Server) checkAuthor(env *envelope, h *textproto.Header) error {
	if env.tenant == nil || len(env.tenant.SenderDomains) == 0 {
		return nil
	}
	domains, ok := authorDomains(h)
	if !ok {
		return s.refuse(env.client, env.from, "bad_from", smtpErr(reply.New(553, "5.7.1",
			"From: header field cannot be read; it must name the author's address in a domain of tenant "+env.tenant.Name)))
	}
	for _, d := range domains {
		if !env.tenant.MaySend(d) {
			return s.refuse(env.client, env.from, "from_not_allowed", smtpErr(reply.New(553, "5.7.1",
				fmt.Sprintf("From: domain %s is not allowed for tenant %s", d, env.tenant.Name))), "from_domain", d)
		}
	}
	return nil
}

// authorDomains returns the domain of every address of every From: field,
// read as the DKIM signer reads the first one; ok is false when a field
// does not parse or an address has no usable domain.
func authorDomains(h *textproto.Header) (domains []string, ok bool) {
	fields := h.FieldsByKey("From")
	for fields.Next() {
		list, err := mail.ParseAddressList(fields.Value())
		if err != nil || len(list) == 0 {
			return nil, false
		}
		for _, a := range list {
			_, dom, found := strings.Cut(a.Address, "@")
			if !found {
				return nil, false
			}
			d, err := address.NormalizeDomain(dom)
			if err != nil {
				return nil, false
			}
			domains = append(domains, d)
		}
	}
	return domains, true
}

// isAddressLiteral reports whether a normalised domain is an address
// literal ("[192.0.2.1]", "[IPv6:...]").
func isAddressLiteral(domain string) bool { return strings.HasPrefix(domain, "[") }

// checkRecipientDomain refuses an address literal unless the tenant allows
// them (address_literals = true): mail to a bare IP is almost always a
// mistake or a probe, and would bounce later as backscatter.
func (s *Server) checkRecipientDomain(t *tenant.Tenant, client netip.Addr, from, rcpt, domain string) error {
	if !isAddressLiteral(domain) || (t != nil && t.AddressLiterals) {
		return nil
	}
	return s.refuse(client, from, "address_literal", smtpErr(reply.New(550, "5.1.3",
		"Recipient address rejected: address literals are not accepted, use a domain name")), "rcpt", rcpt)
}
