package dnscheck

import (
	"fmt"
	"net/netip"
	"strings"

	"corriere/core/spf"
)

// spfResult is what the SPF check of an envelope domain found, for DMARC.
type spfResult struct {
	// passAll is true when every source IP passes.
	passAll bool
}

// spfFindings evaluates domain d's SPF record for every source IP, with
// envelope sender sender, and adds one finding per IP (or one for the whole
// record when it is missing or broken).
func (r *run) spfFindings(d, sender string) *spfResult {
	res := &spfResult{}
	r.spf[d] = res
	sources := r.c.Platform.Sources
	if len(sources) == 0 {
		r.add(Finding{Domain: d, Check: CheckSPF, Subject: "source IPs", Status: Warning,
			Meaning: "the platform names no source IP (rules/pools.lua or --source-ip), so SPF cannot be checked for the IPs mail really leaves from.",
			Fix:     "list the egress IPs in rules/pools.lua or give --source-ip"})
		return res
	}
	checker := &spf.Checker{Resolver: r.c.Resolver}
	var missing []netip.Addr
	var findings []Finding
	maxLookups := 0
	for _, s := range sources {
		out := checker.Check(r.ctx, s.IP, sender, s.HELO)
		maxLookups = max(maxLookups, out.Lookups)
		subject := s.IP.String()
		switch out.Result {
		case spf.Pass:
			findings = append(findings, Finding{Domain: d, Check: CheckSPF, Subject: subject, Status: OK,
				Meaning: fmt.Sprintf("SPF passes for %s.", s.IP),
				Detail:  fmt.Sprintf("matched %s (%d of %d DNS lookups)", strings.Join(out.Trail, " → "), out.Lookups, spf.MaxLookups)})
		case spf.None:
			r.add(Finding{Domain: d, Check: CheckSPF, Subject: "record", Status: Error,
				Meaning: "the domain publishes no SPF record, so receivers cannot tell the platform's IPs from forgers and many reject or junk its mail.",
				Detail:  out.Reason,
				Fix:     zoneTXT(d, r.ttl(), suggestSPF("", sources))})
			return res
		case spf.PermError:
			r.add(Finding{Domain: d, Check: CheckSPF, Subject: "record", Status: Error,
				Meaning: "the SPF record is broken (permerror): receivers treat the mail as unauthenticated and DMARC cannot pass through SPF.",
				Detail:  out.Reason,
				Fix:     "correct the record: " + out.Reason})
			return res
		case spf.TempError:
			findings = append(findings, tempFinding(d, CheckSPF, subject, fmt.Errorf("%s", out.Reason)))
		default:
			missing = append(missing, s.IP)
			trail := strings.Join(out.Trail, " → ")
			findings = append(findings, Finding{Domain: d, Check: CheckSPF, Subject: subject, Status: Error,
				Meaning: fmt.Sprintf("SPF gives %s for mail from %s: receivers may reject it or file it as spam, and DMARC cannot pass through SPF.", out.Result, s.IP),
				Detail:  fmt.Sprintf("%s by %s", out.Result, trail)})
		}
	}
	if len(missing) > 0 {
		current := r.currentSPF(d)
		fix := zoneTXT(d, r.ttl(), suggestSPF(current, sourcesOf(missing)))
		for i := range findings {
			if findings[i].Status == Error {
				findings[i].Fix = fix
			}
		}
	}
	r.report.Findings = append(r.report.Findings, findings...)
	if maxLookups > spf.MaxLookups-2 {
		r.add(Finding{Domain: d, Check: CheckSPF, Subject: "lookups", Status: Warning,
			Meaning: fmt.Sprintf("the record uses %d of the %d DNS lookups SPF allows: one more include anywhere in the chain makes it a permerror for everyone.", maxLookups, spf.MaxLookups),
			Fix:     "replace includes with the ip4:/ip6: ranges they publish, or remove the ones no longer sending"})
	}
	res.passAll = len(missing) == 0 && !hasStatus(findings, Warning)
	return res
}

func hasStatus(fs []Finding, s Status) bool {
	for _, f := range fs {
		if f.Status == s {
			return true
		}
	}
	return false
}

func sourcesOf(ips []netip.Addr) []Source {
	out := make([]Source, len(ips))
	for i, ip := range ips {
		out[i].IP = ip
	}
	return out
}

// currentSPF returns the domain's SPF record, "" when it has none.
func (r *run) currentSPF(d string) string {
	recs, err := r.lookupTXT(d, "v=spf1")
	if err != nil || len(recs) != 1 {
		return ""
	}
	return recs[0]
}

// suggestSPF returns record with ip4:/ip6: terms for the sources added
// before its all or redirect, or a new record for them when record is
// empty.
func suggestSPF(record string, sources []Source) string {
	var add []string
	for _, s := range sources {
		m := "ip4:" + s.IP.String()
		if !s.IP.Is4() {
			m = "ip6:" + s.IP.String()
		}
		add = append(add, m)
	}
	if record == "" {
		return "v=spf1 " + strings.Join(add, " ") + " ~all"
	}
	terms := strings.Fields(record)
	at := len(terms)
	for i, t := range terms {
		l := strings.ToLower(strings.TrimLeft(t, "+-~?"))
		if l == "all" || strings.HasPrefix(l, "redirect=") {
			at = i
			break
		}
	}
	out := append([]string{}, terms[:at]...)
	out = append(out, add...)
	return strings.Join(append(out, terms[at:]...), " ")
}
