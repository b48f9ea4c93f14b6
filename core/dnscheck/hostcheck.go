package dnscheck

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"corriere/core/spf"
)

// reverseDNS checks the PTR of every source IP, that the PTR name resolves
// back to the IP (FCrDNS), and that the HELO name is that name.
func (r *run) reverseDNS() {
	for _, s := range r.c.Platform.Sources {
		subject := s.IP.String()
		arpa, _ := mdns.ReverseAddr(s.IP.Unmap().String())
		helo := s.HELO
		if helo == "" {
			helo = r.c.Hostname
		}
		names, err := r.c.Resolver.LookupPTR(r.ctx, s.IP)
		if err != nil && !isNotFound(err) {
			r.add(tempFinding("", CheckPTR, subject, err))
			continue
		}
		if len(names) == 0 {
			r.add(Finding{Check: CheckPTR, Subject: subject, Status: Error,
				Meaning: fmt.Sprintf("%s has no reverse DNS (PTR): Gmail, Yahoo and Microsoft refuse or junk mail from IPs without one; whoever owns the IP publishes it.", s.IP),
				Fix:     fmt.Sprintf("%s %d IN PTR %s.", arpa, r.ttl(), strings.TrimSuffix(helo, "."))})
			continue
		}
		var confirmed []string
		for _, n := range names {
			ips, err := r.addrsOf(n)
			if err == nil && containsIP(ips, s.IP) {
				confirmed = append(confirmed, strings.ToLower(n))
			}
		}
		if len(confirmed) == 0 {
			r.add(Finding{Check: CheckPTR, Subject: subject, Status: Error,
				Meaning: fmt.Sprintf("the PTR name of %s does not resolve back to it (no forward-confirmed reverse DNS): receivers treat the IP like a dynamic one and refuse or junk its mail.", s.IP),
				Detail:  "PTR " + strings.Join(names, ", "),
				Fix:     fmt.Sprintf("%s. %d IN %s %s", names[0], r.ttl(), addrType(s.IP), s.IP)})
			continue
		}
		f := Finding{Check: CheckPTR, Subject: subject, Status: OK,
			Meaning: fmt.Sprintf("%s has forward-confirmed reverse DNS and greets with its PTR name.", s.IP),
			Detail:  fmt.Sprintf("PTR %s, HELO %s", strings.Join(confirmed, ", "), helo)}
		if !slices.Contains(confirmed, strings.ToLower(strings.TrimSuffix(helo, "."))) {
			f.Status = Warning
			f.Meaning = fmt.Sprintf("%s greets as %s, which is not its PTR name: some receivers score a HELO that does not match the reverse DNS as suspicious.", s.IP, helo)
			f.Fix = fmt.Sprintf("set helo = %q for %s in rules/pools.lua (or --source-ip %s=%s)", confirmed[0], s.IP, s.IP, confirmed[0])
		}
		r.add(f)
		r.heloSPF(s.IP, helo)
	}
}

// heloSPF checks the SPF of the HELO identity (RFC 7208 section 2.3): it is
// what receivers check for the bounces the platform sends, whose envelope
// sender is empty.
func (r *run) heloSPF(ip netip.Addr, helo string) {
	checker := &spf.Checker{Resolver: r.c.Resolver}
	out := checker.Check(r.ctx, ip, "", helo)
	subject := "HELO " + helo
	fix := zoneTXT(helo, r.ttl(), "v=spf1 a -all")
	switch out.Result {
	case spf.Pass:
		r.add(Finding{Check: CheckSPF, Subject: subject, Status: OK,
			Meaning: fmt.Sprintf("SPF of the HELO name passes for %s, so the bounces it sends pass SPF.", ip),
			Detail:  fmt.Sprintf("matched %s", strings.Join(out.Trail, " → "))})
	case spf.TempError:
		r.add(tempFinding("", CheckSPF, subject, fmt.Errorf("%s", out.Reason)))
	case spf.None:
		r.add(Finding{Check: CheckSPF, Subject: subject, Status: Warning,
			Meaning: "the HELO name publishes no SPF record: the bounces the platform sends (empty envelope sender) are checked against it and do not pass SPF.",
			Fix:     fix})
	default:
		r.add(Finding{Check: CheckSPF, Subject: subject, Status: Error,
			Meaning: fmt.Sprintf("SPF of the HELO name gives %s for %s: the bounces the platform sends from it fail SPF.", out.Result, ip),
			Detail:  strings.TrimSpace(out.Reason + " " + strings.Join(out.Trail, " → ")),
			Fix:     fix})
	}
}

func containsIP(ips []netip.Addr, ip netip.Addr) bool {
	for _, a := range ips {
		if a.Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

func addrType(ip netip.Addr) string {
	if ip.Unmap().Is4() {
		return "A"
	}
	return "AAAA"
}

// bounceDomain checks a bounce or return-path domain: its MX reaches the
// bounce listener, and its SPF passes for every source IP.
func (r *run) bounceDomain(d string) {
	r.bounceMX(d)
	r.spfFindings(d, "bounces@"+d)
	r.mtaSTS(d)
	r.tlsRPT(d)
}

// bounceMX checks that d's MX hosts reach the bounce listener.
func (r *run) bounceMX(d string) {
	listener := r.c.Platform.BounceListener
	host := r.c.Hostname
	if host == "" {
		host = "bounces-mx." + d
	}
	fix := fmt.Sprintf("%s. %d IN MX 10 %s.", d, r.ttl(), strings.TrimSuffix(host, "."))
	if listener == "" {
		r.add(Finding{Domain: d, Check: CheckMX, Subject: "bounce listener", Status: Warning,
			Meaning: "the node runs no bounce listener (--bounce-listen), so bounces and complaints sent to this domain are not classified and suppress nobody.",
			Fix:     "start corriere serve with --bounce-listen, then publish " + fix})
		return
	}
	names, err := r.c.Resolver.LookupMX(r.ctx, d)
	if err != nil && !isNotFound(err) {
		r.add(tempFinding(d, CheckMX, "MX", err))
		return
	}
	if len(names) == 0 {
		r.add(Finding{Domain: d, Check: CheckMX, Subject: "MX", Status: Error,
			Meaning: "the bounce domain has no MX: bounces of the platform's mail cannot come back, so bad addresses are never suppressed and the IPs' reputation suffers.",
			Fix:     fix})
		return
	}
	ip, port := listenerIP(listener)
	var addrs []netip.Addr
	for _, n := range names {
		ips, _ := r.addrsOf(n)
		addrs = append(addrs, ips...)
	}
	f := Finding{Domain: d, Check: CheckMX, Subject: "MX", Status: OK,
		Meaning: "bounces to this domain reach the bounce listener.",
		Detail:  fmt.Sprintf("MX %s → %s; listener %s", strings.Join(names, ", "), joinAddrs(addrs), listener)}
	switch {
	case ip.IsValid() && !containsIP(addrs, ip):
		f.Status = Error
		f.Meaning = fmt.Sprintf("the MX of the bounce domain does not point at the bounce listener (%s): bounces go elsewhere and suppress nobody.", listener)
		f.Fix = fix
	case !ip.IsValid():
		f.Meaning = "the domain has an MX; the bounce listener listens on every address, so check that the MX hosts are this node."
	}
	if port != "25" && port != "" {
		if f.Status == OK {
			f.Status = Warning
		}
		f.Meaning += fmt.Sprintf(" The listener is on port %s, but mail to an MX arrives on port 25: forward 25 to it.", port)
	}
	r.add(f)
}

func joinAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	if len(s) == 0 {
		return "no address"
	}
	return strings.Join(s, ", ")
}

// mtaSTS checks the MTA-STS TXT record (RFC 8461) when there is one.
func (r *run) mtaSTS(d string) {
	name := "_mta-sts." + d
	recs, err := r.lookupTXT(name, "v=STSv1")
	if err != nil || len(recs) == 0 {
		return
	}
	f := Finding{Domain: d, Check: CheckMTASTS, Subject: name, Status: OK, Detail: strings.Join(recs, " | "),
		Meaning: "senders that support MTA-STS fetch the policy at https://mta-sts." + d + "/.well-known/mta-sts.txt and deliver to the domain only over verified TLS."}
	id := dkimTags(recs[0])["id"]
	switch {
	case len(recs) > 1:
		f.Status, f.Meaning = Error, "several MTA-STS records: senders ignore the policy, so mail to the domain is not protected."
	case id == "" || len(id) > 32 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "":
		f.Status, f.Meaning = Error, "the MTA-STS record has no valid id= (1 to 32 letters and digits): senders ignore the policy."
	}
	if f.Status == Error {
		f.Fix = zoneTXT(name, r.ttl(), "v=STSv1; id="+r.report.Checked.Format("20060102T150405"))
	}
	r.add(f)
}

// tlsRPT checks the TLS-RPT TXT record (RFC 8460) when there is one.
func (r *run) tlsRPT(d string) {
	name := "_smtp._tls." + d
	recs, err := r.lookupTXT(name, "v=TLSRPTv1")
	if err != nil || len(recs) == 0 {
		return
	}
	f := Finding{Domain: d, Check: CheckTLSRPT, Subject: name, Status: OK, Detail: strings.Join(recs, " | "),
		Meaning: "senders report TLS failures delivering to this domain to the rua address."}
	rua := dkimTags(recs[0])["rua"]
	switch {
	case len(recs) > 1:
		f.Status, f.Meaning = Error, "several TLS-RPT records: senders send no reports."
	case !strings.HasPrefix(rua, "mailto:") && !strings.HasPrefix(rua, "https:"):
		f.Status, f.Meaning = Error, "the TLS-RPT record has no rua= with a mailto: or https: address: senders send no reports."
	}
	if f.Status == Error {
		f.Fix = zoneTXT(name, r.ttl(), "v=TLSRPTv1; rua=mailto:tls-reports@"+d)
	}
	r.add(f)
}
