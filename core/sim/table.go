package sim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Describe writes a table of the running world for people: each provider's
// domains with their MX hosts and addresses, each provider's behaviour, the
// special domains, and where DNS and the MX servers listen.
func (s *Sim) Describe(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tDOMAIN\tPREF\tMX HOST\tADDRESS")
	for _, p := range s.providers {
		name := p.cfg.Name
		for _, d := range p.cfg.Domains {
			domain := d.Name
			for _, mx := range d.MX {
				addr := mx.IP
				if mx.Dead {
					addr += " (no listener)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", name, domain, mx.Preference, mx.Host, addr)
				name, domain = "", ""
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tBEHAVIOUR")
	for _, p := range s.providers {
		fmt.Fprintf(tw, "%s\t%s\n", p.cfg.Name, p.cfg.Summary())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(s.world.NullMX) > 0 {
		fmt.Fprintf(w, "Null MX (accept no mail):  %s\n", strings.Join(s.world.NullMX, ", "))
	}
	if len(s.world.NXDomains) > 0 {
		fmt.Fprintf(w, "NXDOMAIN (do not exist):   %s\n", strings.Join(s.world.NXDomains, ", "))
	}
	fmt.Fprintf(w, "DNS:                       %s (UDP and TCP)\n", s.DNSAddr())
	fmt.Fprintf(w, "MX port:                   %d on every MX address\n", s.MXPort())
	if s.opts.ReturnPort > 0 {
		fmt.Fprintf(w, "Bounces and complaints:    to port %d of the recipient domain's MX\n", s.opts.ReturnPort)
	} else {
		fmt.Fprintln(w, "Bounces and complaints:    off (no return port)")
	}
	return nil
}

// WriteStats writes each provider's counters as a table.
func (s *Sim) WriteStats(w io.Writer) error {
	stats := s.Stats()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tCONNS\tPEAK/IP\tACCEPTED\tGREYLISTED\tRATE-LIMITED\tREJECTED\tBOUNCES\tCOMPLAINTS")
	for _, p := range s.providers {
		st := stats[p.cfg.Name]
		peak, peakIP := 0, ""
		for ip, n := range st.PeakConnectionsPerIP {
			if n > peak || n == peak && ip < peakIP {
				peak, peakIP = n, ip
			}
		}
		peakText := "-"
		if peak > 0 {
			peakText = fmt.Sprintf("%d (%s)", peak, peakIP)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\t%d\t%d\n", p.cfg.Name, st.Connections, peakText,
			st.Accepted, st.Greylisted, st.RateLimited, countsText(st.Rejected), st.AsyncBounces, st.Complaints)
	}
	return tw.Flush()
}

// countsText formats counts as "a=1 b=2", sorted by key, or "-".
func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
