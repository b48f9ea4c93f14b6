package dnscheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// dmarcRecord is a parsed DMARC record (RFC 7489 section 6.3).
type dmarcRecord struct {
	policy, subdomainPolicy string
	pct                     int
	adkim, aspf             string // "r" or "s"
	rua, ruf                string
}

// parseDMARC parses a DMARC record.
func parseDMARC(rec string) (*dmarcRecord, error) {
	d := &dmarcRecord{pct: 100, adkim: "r", aspf: "r"}
	parts := strings.Split(rec, ";")
	if v, _ := strings.CutPrefix(strings.TrimSpace(parts[0]), "v="); strings.TrimSpace(v) != "DMARC1" {
		return nil, errors.New("the record does not start with v=DMARC1")
	}
	for _, part := range parts[1:] {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("tag %q has no value", part)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "p", "sp":
			v = strings.ToLower(v)
			if v != "none" && v != "quarantine" && v != "reject" {
				return nil, fmt.Errorf("%s=%s: want none, quarantine or reject", k, v)
			}
			if k == "p" {
				d.policy = v
			} else {
				d.subdomainPolicy = v
			}
		case "pct":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return nil, fmt.Errorf("pct=%s: want 0 to 100", v)
			}
			d.pct = n
		case "adkim", "aspf":
			v = strings.ToLower(v)
			if v != "r" && v != "s" {
				return nil, fmt.Errorf("%s=%s: want r or s", k, v)
			}
			if k == "adkim" {
				d.adkim = v
			} else {
				d.aspf = v
			}
		case "rua", "ruf":
			for _, uri := range strings.Split(v, ",") {
				if !strings.Contains(strings.TrimSpace(uri), ":") {
					return nil, fmt.Errorf("%s: %q is not a URI (mailto:...)", k, uri)
				}
			}
			if k == "rua" {
				d.rua = v
			} else {
				d.ruf = v
			}
		}
	}
	if d.policy == "" {
		return nil, errors.New("the record has no p= tag")
	}
	return d, nil
}

// orgDomain is the organisational domain of d (RFC 7489 section 3.2): the
// public suffix plus one label.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether identifier domain id aligns with From: domain
// from in mode ("s" strict, "r" relaxed).
func aligned(id, from, mode string) bool {
	if id == "" {
		return false
	}
	if mode == "s" {
		return id == from
	}
	return orgDomain(id) == orgDomain(from)
}

// dmarcFindings checks d's DMARC record and whether the platform's mail
// From: d passes DMARC through SPF (envelope domain env) or DKIM (s).
func (r *run) dmarcFindings(d, env string, s signer, t *Tenant) {
	name := "_dmarc." + d
	recs, err := r.lookupTXT(name, "v=DMARC1")
	if err != nil {
		r.add(tempFinding(d, CheckDMARC, name, err))
		return
	}
	suggested := zoneTXT(name, r.ttl(), "v=DMARC1; p=none; rua=mailto:dmarc-reports@"+d)
	inherited := false
	if len(recs) == 0 && orgDomain(d) != d {
		if recs, err = r.lookupTXT("_dmarc."+orgDomain(d), "v=DMARC1"); err != nil {
			r.add(tempFinding(d, CheckDMARC, name, err))
			return
		}
		inherited = len(recs) > 0
	}
	var rec *dmarcRecord
	switch {
	case len(recs) == 0:
		r.add(Finding{Domain: d, Check: CheckDMARC, Subject: name, Status: Warning,
			Meaning: "the domain publishes no DMARC record: Gmail and Yahoo require one from bulk senders, and without it nobody reports forgeries of the domain.",
			Fix:     suggested})
	case len(recs) > 1:
		r.add(Finding{Domain: d, Check: CheckDMARC, Subject: name, Status: Error,
			Meaning: "the domain publishes several DMARC records, so receivers apply none.",
			Detail:  strings.Join(recs, " | "), Fix: suggested})
	default:
		rec, err = parseDMARC(recs[0])
		if err != nil {
			r.add(Finding{Domain: d, Check: CheckDMARC, Subject: name, Status: Error,
				Meaning: "the DMARC record does not parse, so receivers ignore it: " + err.Error() + ".",
				Detail:  recs[0], Fix: suggested})
			rec = nil
			break
		}
		from := ""
		if inherited {
			from = " (inherited from _dmarc." + orgDomain(d) + ")"
		}
		r.add(Finding{Domain: d, Check: CheckDMARC, Subject: name, Status: OK,
			Meaning: "the DMARC record parses" + from + ".",
			Detail:  rec.describe()})
	}
	r.alignment(d, env, s, t, rec, inherited)
}

func (rec *dmarcRecord) describe() string {
	s := fmt.Sprintf("p=%s pct=%d adkim=%s aspf=%s", rec.policy, rec.pct, rec.adkim, rec.aspf)
	if rec.subdomainPolicy != "" {
		s += " sp=" + rec.subdomainPolicy
	}
	rua, ruf := rec.rua, rec.ruf
	if rua == "" {
		rua = "none (no aggregate reports)"
	}
	if ruf == "" {
		ruf = "none"
	}
	return s + " rua=" + rua + " ruf=" + ruf
}

// alignment says whether the platform's mail From: d passes DMARC.
func (r *run) alignment(d, env string, s signer, t *Tenant, rec *dmarcRecord, inherited bool) {
	aspf, adkim, policy, pct := "r", "r", "none", 100
	if rec != nil {
		aspf, adkim, policy, pct = rec.aspf, rec.adkim, rec.policy, rec.pct
		if inherited && rec.subdomainPolicy != "" {
			policy = rec.subdomainPolicy
		}
	}
	spfRes := r.spf[env]
	spfOK := spfRes != nil && spfRes.passAll && aligned(env, d, aspf)
	dkimOK := s.verifies && aligned(s.domain, d, adkim)
	reenveloped := t != nil && t.Reenvelope
	tradeoff := ""
	if reenveloped {
		tradeoff = fmt.Sprintf(" The tenant re-envelopes: SPF and DKIM pass for the platform (%s, d=%s), not for the author's domain, so a strict DMARC policy on %s fails unless %s signs with a key of its own; mail clients may also show \"sent by %s on behalf of\" the author.", env, s.domain, d, d, env)
	}
	var via []string
	if spfOK {
		via = append(via, "SPF ("+env+")")
	}
	if dkimOK {
		via = append(via, "DKIM (d="+s.domain+")")
	}
	f := Finding{Domain: d, Check: CheckDMARC, Subject: "alignment"}
	if len(via) > 0 {
		f.Status = OK
		f.Meaning = "mail from this platform passes DMARC through " + strings.Join(via, " and ") + "." + tradeoff
		r.add(f)
		return
	}
	f.Detail = r.misalignment(d, env, s, aspf, adkim, spfRes)
	switch {
	case rec != nil && policy != "none" && pct > 0:
		f.Status = Error
		f.Meaning = fmt.Sprintf("mail from this platform fails DMARC (neither SPF nor DKIM aligns with %s), and p=%s tells receivers to %s it.%s", d, policy, map[string]string{"reject": "reject", "quarantine": "junk"}[policy], tradeoff)
	default:
		f.Status = Warning
		f.Meaning = "mail from this platform would fail DMARC (neither SPF nor DKIM aligns); with no enforcing policy it is delivered, but reputation suffers and a stricter policy later would block it." + tradeoff
	}
	f.Fix = r.alignmentFix(d, s)
	r.add(f)
}

// misalignment explains why neither identifier aligns.
func (r *run) misalignment(d, env string, s signer, aspf, adkim string, spfRes *spfResult) string {
	var why []string
	switch {
	case spfRes == nil || !spfRes.passAll:
		why = append(why, "SPF of "+env+" does not pass for every source IP")
	case !aligned(env, d, aspf):
		why = append(why, fmt.Sprintf("envelope domain %s does not align with %s (aspf=%s)", env, d, aspf))
	}
	switch {
	case s.domain == "":
		why = append(why, "no DKIM key signs the mail")
	case !s.verifies:
		why = append(why, "no active DKIM key of "+s.domain+" verifies against its published record")
	case !aligned(s.domain, d, adkim):
		why = append(why, fmt.Sprintf("DKIM domain %s does not align with %s (adkim=%s)", s.domain, d, adkim))
	}
	return strings.Join(why, "; ")
}

// alignmentFix is the record that would make mail From: d pass DMARC
// through DKIM: the record of d's own active key, or the steps to make one.
func (r *run) alignmentFix(d string, s signer) string {
	if s.domain == d {
		for _, k := range r.c.Platform.Keys {
			if k.Domain == d && k.Active {
				return zoneTXT(k.Selector+"._domainkey."+d, r.ttl(), k.Record)
			}
		}
	}
	return fmt.Sprintf("corriere dkim keygen --domain %s --selector corriere1, publish the record it prints and list the key under domains[%q] in rules/dkim.lua", d, d)
}
