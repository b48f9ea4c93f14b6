package dns

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// TTL bounds (RFC 2308 section 5 for negative answers).
const (
	minTTL         = 5 * time.Second
	maxPositiveTTL = 24 * time.Hour
	maxNegativeTTL = time.Hour
	defaultNegTTL  = 60 * time.Second
)

// maxCNAMEHops bounds how many CNAMEs are followed in one answer.
const maxCNAMEHops = 8

// answer is what one query settled to: the records of the asked type, already
// decoded, or a negative answer (NXDOMAIN, or NODATA when no slice holds
// anything). Answers are shared by the cache and concurrent callers, so they
// are never modified after parseAnswer returns.
type answer struct {
	nxdomain bool
	server   string        // the server that answered
	ttl      time.Duration // how long the answer may be cached

	mx     []MX         // MX: sorted by preference then host, deduplicated, without "."
	nullMX bool         // MX: the only target was "." (RFC 7505)
	addrs  []netip.Addr // A or AAAA: deduplicated
	strs   []string     // TXT: one joined string per record; PTR: host names
}

// parseAnswer decodes reply, which answers the question k, following CNAMEs
// from k.name through the answer section.
func parseAnswer(reply *mdns.Msg, k key, server string) *answer {
	a := &answer{server: server, nxdomain: reply.Rcode == mdns.RcodeNameError}
	owner := mdns.Fqdn(k.name)
	ttl := uint32(1<<32 - 1)
	var rrs []mdns.RR
	for hop := 0; ; hop++ {
		var cname *mdns.CNAME
		for _, rr := range reply.Answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || !strings.EqualFold(h.Name, owner) {
				continue
			}
			if h.Rrtype == k.qtype {
				rrs = append(rrs, rr)
				ttl = min(ttl, h.Ttl)
			} else if c, ok := rr.(*mdns.CNAME); ok && cname == nil {
				cname = c
			}
		}
		if len(rrs) > 0 || cname == nil || hop == maxCNAMEHops {
			break
		}
		ttl = min(ttl, cname.Hdr.Ttl)
		owner = cname.Target
	}
	if len(rrs) == 0 {
		a.ttl = negativeTTL(reply)
		return a
	}
	a.nxdomain = false
	a.ttl = clamp(time.Duration(ttl)*time.Second, minTTL, maxPositiveTTL)
	switch k.qtype {
	case mdns.TypeMX:
		a.mx, a.nullMX = decodeMX(rrs)
	case mdns.TypeA, mdns.TypeAAAA:
		a.addrs = decodeAddrs(rrs)
	case mdns.TypeTXT:
		for _, rr := range rrs {
			if txt, ok := rr.(*mdns.TXT); ok {
				a.strs = append(a.strs, strings.Join(txt.Txt, ""))
			}
		}
	case mdns.TypePTR:
		for _, rr := range rrs {
			if ptr, ok := rr.(*mdns.PTR); ok {
				if h := hostName(ptr.Ptr); h != "" && !slices.Contains(a.strs, h) {
					a.strs = append(a.strs, h)
				}
			}
		}
	}
	return a
}

// decodeMX returns the MX hosts of rrs sorted by preference, each host once
// with its lowest preference, and whether the set is a null MX: "." targets
// and nothing else.
func decodeMX(rrs []mdns.RR) (hosts []MX, null bool) {
	for _, rr := range rrs {
		mx, ok := rr.(*mdns.MX)
		if !ok {
			continue
		}
		host := hostName(mx.Mx)
		if host == "" {
			null = true
			continue
		}
		if i := slices.IndexFunc(hosts, func(m MX) bool { return m.Host == host }); i >= 0 {
			hosts[i].Pref = min(hosts[i].Pref, mx.Preference)
			continue
		}
		hosts = append(hosts, MX{Host: host, Pref: mx.Preference})
	}
	slices.SortFunc(hosts, func(x, y MX) int {
		return cmp.Or(cmp.Compare(x.Pref, y.Pref), strings.Compare(x.Host, y.Host))
	})
	return hosts, null && len(hosts) == 0
}

// decodeAddrs returns the addresses of A or AAAA records, each once.
func decodeAddrs(rrs []mdns.RR) []netip.Addr {
	var addrs []netip.Addr
	for _, rr := range rrs {
		var ip netip.Addr
		switch rr := rr.(type) {
		case *mdns.A:
			ip, _ = netip.AddrFromSlice(rr.A.To4())
		case *mdns.AAAA:
			ip, _ = netip.AddrFromSlice(rr.AAAA.To16())
		}
		if ip.IsValid() && !slices.Contains(addrs, ip) {
			addrs = append(addrs, ip)
		}
	}
	return addrs
}

// hostName returns a host name from a record in lower case without the
// trailing dot; the root "." becomes "".
func hostName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// negativeTTL is how long a negative reply may be cached: the smaller of the
// SOA record's TTL and its minimum field (RFC 2308 section 5), or
// defaultNegTTL without an SOA.
func negativeTTL(reply *mdns.Msg) time.Duration {
	for _, rr := range reply.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return clamp(time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second, minTTL, maxNegativeTTL)
		}
	}
	return defaultNegTTL
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}
