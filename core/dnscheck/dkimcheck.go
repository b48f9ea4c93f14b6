package dnscheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// commonSelectors are selectors other services often publish, looked up to
// find keys that are published but not configured.
var commonSelectors = []string{"default", "dkim", "mail", "k1", "s1", "s2", "selector1", "selector2", "google"}

// signer is the domain whose keys sign a sender domain's mail, and whether
// one of its active keys verifies.
type signer struct {
	domain   string
	verifies bool
}

// signingDomain returns the domain whose keys sign mail From: d: the
// platform domain for re-enveloped mail, d itself or a parent that signs its
// subdomains, or the tenant's DKIM domain; "" when the mail leaves unsigned.
// It follows the order of rules/dkim.lua.
func (p *Platform) signingDomain(d string, t *Tenant) string {
	if t != nil && t.Reenvelope && p.PlatformDKIMDomain != "" {
		return p.PlatformDKIMDomain
	}
	for _, k := range p.Keys {
		if k.Domain == d {
			return d
		}
	}
	for _, s := range p.SubdomainSigners {
		if strings.HasSuffix(d, "."+s) {
			return s
		}
	}
	if t != nil {
		return t.DKIMDomain
	}
	return ""
}

// dkimFindings checks the keys that sign mail From: d and returns the
// signing domain.
func (r *run) dkimFindings(d string, t *Tenant) signer {
	sd := r.c.Platform.signingDomain(d, t)
	if sd == "" {
		r.add(Finding{Domain: d, Check: CheckDKIM, Subject: "keys", Status: Warning,
			Meaning: "no key in rules/dkim.lua signs mail From: this domain, so it leaves unsigned: DMARC can pass only through SPF, and Gmail and Yahoo want bulk mail signed.",
			Fix:     fmt.Sprintf("corriere dkim keygen --domain %s --selector corriere1, publish the record it prints and add the key to rules/dkim.lua", d)})
		return signer{}
	}
	if verifies, done := r.dkim[sd]; done {
		f := Finding{Domain: d, Check: CheckDKIM, Subject: "signing domain", Status: OK,
			Meaning: fmt.Sprintf("mail From: %s is signed by %s (d=%s), whose keys are checked above and verify.", d, sd, sd)}
		if !verifies {
			f.Status = Warning
			f.Meaning = fmt.Sprintf("mail From: %s is signed by %s (d=%s), whose keys are checked above and do not verify.", d, sd, sd)
		}
		r.add(f)
		return signer{domain: sd, verifies: verifies}
	}
	if sd != d {
		r.add(Finding{Domain: d, Check: CheckDKIM, Subject: "signing domain", Status: OK,
			Meaning: fmt.Sprintf("mail From: %s is signed by %s (d=%s); its keys are checked below.", d, sd, sd)})
	}
	verifies := false
	configured := map[string]bool{}
	for _, k := range r.c.Platform.Keys {
		if k.Domain != sd {
			continue
		}
		configured[strings.ToLower(k.Selector)] = true
		if r.keyFinding(d, k) && k.Active {
			verifies = true
		}
	}
	r.unconfiguredSelectors(d, sd, configured)
	r.dkim[sd] = verifies
	return signer{domain: sd, verifies: verifies}
}

// keyFinding checks that key k's record is published and holds k's public
// key, and reports whether it does. The finding is filed under the sender
// domain d whose mail the key signs.
func (r *run) keyFinding(d string, k Key) bool {
	name := k.Selector + "._domainkey." + k.Domain
	fix := zoneTXT(name, r.ttl(), k.Record)
	f := Finding{Domain: d, Check: CheckDKIM, Subject: name, Status: Error, Fix: fix}
	waiting := ""
	if !k.Active {
		waiting = " The key does not sign yet (it waits in a rotation): publish the record before making it active."
		f.Status = Warning
	}
	recs, err := r.c.Resolver.LookupTXT(r.ctx, name)
	if err != nil && !isNotFound(err) {
		r.add(tempFinding(d, CheckDKIM, name, err))
		return false
	}
	want := dkimTags(k.Record)["p"]
	switch {
	case len(recs) == 0:
		f.Meaning = "the key's record is not published: receivers cannot verify its signatures, so DKIM fails and DMARC can pass only through SPF." + waiting
		r.add(f)
		return false
	case len(recs) > 1:
		f.Meaning = "the selector publishes several TXT records: receivers cannot tell which holds the key, and DKIM fails." + waiting
		f.Detail = strings.Join(recs, " | ")
		r.add(f)
		return false
	}
	tags := dkimTags(recs[0])
	got, hasP := tags["p"]
	switch {
	case tags["v"] != "" && tags["v"] != "DKIM1", !hasP:
		f.Meaning = "the published record is not a DKIM key record (no p= tag, or a v= other than DKIM1): DKIM fails." + waiting
	case got == "":
		f.Meaning = "the published record revokes the key (empty p=): signatures made with it fail." + waiting
	case got != want:
		f.Meaning = "the published record holds a different public key than the one in rules/dkim.lua: every signature made with this key fails, so DKIM fails and DMARC can pass only through SPF." + waiting
	default:
		detail := "published, holds this key; signing"
		if !k.Active {
			detail = "published, holds this key; not signing yet: it can be made active"
		}
		r.add(Finding{Domain: d, Check: CheckDKIM, Subject: name, Status: OK,
			Meaning: "receivers can verify this key's signatures.", Detail: detail})
		if !k.Active {
			r.report.Rotation = RotationSteps
		}
		return true
	}
	f.Detail = recs[0]
	r.add(f)
	r.report.Rotation = RotationSteps
	return false
}

// unconfiguredSelectors looks for DKIM records of signing domain sd under
// selectors that rules/dkim.lua does not give it: those of other domains and
// common ones. Findings are filed under the sender domain d.
func (r *run) unconfiguredSelectors(d, sd string, configured map[string]bool) {
	var probe []string
	for _, k := range r.c.Platform.Keys {
		probe = append(probe, strings.ToLower(k.Selector))
	}
	probe = append(probe, commonSelectors...)
	sort.Strings(probe)
	probe = slices.Compact(probe)
	for _, s := range probe {
		if configured[s] {
			continue
		}
		name := s + "._domainkey." + sd
		recs, err := r.c.Resolver.LookupTXT(r.ctx, name)
		if err != nil {
			continue
		}
		for _, rec := range recs {
			if _, ok := dkimTags(rec)["p"]; ok {
				r.add(Finding{Domain: d, Check: CheckDKIM, Subject: name, Status: Warning,
					Meaning: "a DKIM key is published under a selector that rules/dkim.lua does not configure: fine if another service signs with it; if it is an old key of this platform, remove it a week after the rotation.",
					Detail:  rec,
					Fix:     "delete " + name + ". TXT once nothing signs with it, or add its key to rules/dkim.lua"})
				break
			}
		}
	}
}

// dkimTags parses the tag=value list of a DKIM key record; whitespace in
// values (a p= split across strings) is removed.
func dkimTags(rec string) map[string]string {
	tags := map[string]string{}
	for _, part := range strings.Split(rec, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		tags[strings.ToLower(strings.TrimSpace(k))] = strings.Join(strings.Fields(v), "")
	}
	return tags
}
