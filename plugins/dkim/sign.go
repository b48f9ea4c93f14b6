package dkim

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	msgdkim "github.com/emersion/go-msgauth/dkim"

	"corriere/core/address"
	"corriere/core/message"
)

// Signed says who signed a message.
type Signed struct {
	// Domain is the signing domain (d=), "" when the message was not signed.
	Domain string
	// Selectors are the selectors that signed, in header order.
	Selectors []string
	// Why says how the domain was chosen: "platform" (re-enveloped), "from"
	// (the From: domain or a parent), "tenant", or, when unsigned, "none".
	Why string
}

// Sign adds a DKIM-Signature field on top of m's header for each active key
// of the signing domain chosen for m (see the package documentation), and
// leaves every other byte of the message as it was. A message for which no
// domain has keys is left unsigned, with Signed.Domain "". An error means a
// key failed to sign; m is then unchanged.
func (r *Rules) Sign(m *message.Message) (Signed, error) {
	d, why := r.choose(m)
	if d == nil {
		return Signed{Why: why}, nil
	}
	hkeys := r.headerKeys(&m.Header)
	buf := headerBufs.Get().(*bytes.Buffer)
	defer headerBufs.Put(buf)
	buf.Reset()
	if err := textproto.WriteHeader(buf, m.Header); err != nil {
		return Signed{}, fmt.Errorf("dkim: write header: %w", err)
	}
	sigs := make([]string, len(d.active))
	for i, k := range d.active {
		sig, err := signOne(d.name, k, hkeys, buf.Bytes(), m.Body)
		if err != nil {
			return Signed{}, fmt.Errorf("dkim: sign as d=%s s=%s with %s: %w", d.name, k.selector, k.file, err)
		}
		sigs[i] = sig
	}
	// AddRaw puts a field on top: add the last signature first.
	s := Signed{Domain: d.name, Why: why, Selectors: make([]string, len(d.active))}
	for i := len(sigs) - 1; i >= 0; i-- {
		m.Header.AddRaw([]byte(sigs[i]))
	}
	for i, k := range d.active {
		s.Selectors[i] = k.selector
	}
	return s, nil
}

// headerBufs holds buffers for the serialised header, which every
// signature of a message hashes.
var headerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// signOne returns the DKIM-Signature field, with its final CRLF, of one key
// over the header and body.
func signOne(domain string, k *key, hkeys []string, header, body []byte) (string, error) {
	s, err := msgdkim.NewSigner(&msgdkim.SignOptions{
		Domain:                 domain,
		Selector:               k.selector,
		Signer:                 k.signer,
		HeaderCanonicalization: msgdkim.CanonicalizationRelaxed,
		BodyCanonicalization:   msgdkim.CanonicalizationRelaxed,
		HeaderKeys:             hkeys,
	})
	if err != nil {
		return "", err
	}
	_, err = s.Write(header)
	if err == nil {
		_, err = s.Write(body)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return s.Signature(), nil
}

// choose returns the signing domain of m and why it was chosen.
func (r *Rules) choose(m *message.Message) (*domain, string) {
	if m.Author != "" && r.platform != nil {
		return r.platform, "platform"
	}
	if d := r.fromDomain(m); d != nil {
		return d, "from"
	}
	if d := r.tenants[m.Tenant]; d != nil && m.Tenant != "" {
		return d, "tenant"
	}
	return nil, "none"
}

// fromDomain returns the entry of the From: domain, or of the closest parent
// domain that allows subdomains, if m's tenant may use it: the domain's
// tenants list admits it, and the tenant's sender_domains allow the From:
// domain.
func (r *Rules) fromDomain(m *message.Message) *domain {
	name := authorDomain(&m.Header)
	if !r.tenantOwns(m.Tenant, name) {
		return nil
	}
	for exact := true; name != ""; exact = false {
		if d := r.domains[name]; d != nil && (exact || d.subdomains) {
			if d.tenants == nil || slices.Contains(d.tenants, m.Tenant) {
				return d
			}
			return nil
		}
		_, parent, ok := strings.Cut(name, ".")
		if !ok || !strings.Contains(parent, ".") {
			return nil
		}
		name = parent
	}
	return nil
}

// tenantOwns reports whether tenant may sign as domain: true unless the
// tenant is known and its sender_domains leave the domain out. Mail without
// a tenant (from a relay network) is held to the domains' tenants lists
// only.
func (r *Rules) tenantOwns(tenant, domain string) bool {
	if r.tenantDir == nil || tenant == "" || domain == "" {
		return true
	}
	t, ok := r.tenantDir.Lookup(tenant)
	return !ok || t.MaySend(domain)
}

// authorDomain returns the lower-case A-label domain of the first address of
// the topmost From: field, or "" when there is none or it does not parse.
func authorDomain(h *textproto.Header) string {
	mh := mail.Header{Header: gomessage.Header{Header: *h}}
	list, err := mh.AddressList("From")
	if err != nil || len(list) == 0 {
		return ""
	}
	_, dom, ok := strings.Cut(list[0].Address, "@")
	if !ok {
		return ""
	}
	d, err := address.NormalizeDomain(dom)
	if err != nil || strings.HasPrefix(d, "[") {
		return ""
	}
	return d
}

// headerKeys returns the h= list for a header: every configured field as
// many times as it appears, and an oversigned field once more.
func (r *Rules) headerKeys(h *textproto.Header) []string {
	keys := make([]string, 0, len(r.fields)+8)
	for _, f := range r.fields {
		n := h.FieldsByKey(f.canon).Len()
		if f.oversign {
			n++
		}
		for range n {
			keys = append(keys, f.name)
		}
	}
	return keys
}
