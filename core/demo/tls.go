package demo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"corriere/core/event"
	"corriere/core/node"
	"corriere/core/sim"
)

// tlsConfig returns the node settings that make it verify the simulated
// receivers: the simulator's certificate as the only authority (written
// into the workspace), the port of its MTA-STS policy server and its DNS
// server as the validating resolver, since it sets the AD bit on the
// zones that publish DANE.
func (d *run) tlsConfig() (node.Config, error) {
	var cfg node.Config
	pemBytes := d.sim.CertificatePEM()
	if pemBytes == nil {
		return cfg, nil
	}
	cfg.TLSRoots = filepath.Join(d.ws.dir, "sim-roots.pem")
	if err := os.WriteFile(cfg.TLSRoots, pemBytes, 0o600); err != nil {
		return cfg, fmt.Errorf("demo: %w", err)
	}
	cfg.MTASTSPort = d.sim.PolicyPort()
	cfg.DANEResolvers = []string{d.sim.DNSAddr()}
	return cfg, nil
}

// tlsDomain is a domain of the world whose mail the TLS policies concern.
type tlsDomain struct {
	name, what string
}

// tlsDomains lists the world's domains with MTA-STS, DANE or an attacker.
func tlsDomains(w *sim.World) []tlsDomain {
	var out []tlsDomain
	for _, p := range w.Providers {
		for _, d := range p.Domains {
			var what []string
			if d.MTASTS != nil {
				what = append(what, "MTA-STS "+d.MTASTS.Mode)
			}
			if d.DANE {
				what = append(what, "DANE")
			}
			if p.Attack != "" {
				what = append(what, "an attacker on the path: "+p.Attack)
			}
			if len(what) > 0 {
				out = append(out, tlsDomain{strings.ToLower(d.Name), strings.Join(what, ", ")})
			}
		}
	}
	return out
}

// tlsOutcome is what became of the recipients of one domain with a TLS
// policy or an attacker.
type tlsOutcome struct {
	tlsDomain
	// policy says the domain publishes MTA-STS or DANE.
	policy                                   bool
	rcpts, overTLS, inClear, held, deferrals int
	// reply is the last TLS policy deferral, if any.
	reply string
}

// tlsOutcomes sorts the recipients of the world's TLS domains by what
// became of them: delivered over TLS or in clear (as the simulated
// providers saw it), or held back.
func (d *run) tlsOutcomes(v view) []tlsOutcome {
	tlsBy, clearBy := map[string]bool{}, map[string]bool{}
	for _, x := range d.sim.Deliveries() {
		rcpt := strings.ToLower(x.Recipient)
		if x.TLS {
			tlsBy[rcpt] = true
		} else {
			clearBy[rcpt] = true
		}
	}
	var out []tlsOutcome
	for _, td := range tlsDomains(d.world) {
		o := tlsOutcome{tlsDomain: td, policy: strings.Contains(td.what, "MTA-STS") || strings.Contains(td.what, "DANE")}
		for rcpt := range d.wl.byRcpt {
			if domainOf(rcpt) != td.name {
				continue
			}
			o.rcpts++
			st := v.rcpts[rcpt]
			switch {
			case clearBy[rcpt]:
				o.inClear++
			case tlsBy[rcpt]:
				o.overTLS++
			case st.status == event.Deferred || st.status == event.Expired || st.status == "":
				o.held++
			}
			o.deferrals += st.deferrals
			if strings.Contains(st.lastReply, "TLS policy") {
				o.reply = st.lastReply
			}
		}
		out = append(out, o)
	}
	return out
}

// writeTLS shows, for each domain with a TLS policy or an attacker, what
// became of its recipients, and the day's TLS-RPT figures.
func (d *run) writeTLS(w io.Writer, v view) {
	outcomes := d.tlsOutcomes(v)
	if len(outcomes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nOutbound TLS (MTA-STS, DANE): what became of the mail to the domains that publish a policy or are attacked:")
	for _, o := range outcomes {
		fmt.Fprintf(w, "  %-24s %s\n", o.name, o.what)
		fmt.Fprintf(w, "  %-24s %d recipients: %d delivered over TLS, %d in clear, %d held back (%d deferrals)\n", "", o.rcpts, o.overTLS, o.inClear, o.held, o.deferrals)
		if o.reply != "" {
			fmt.Fprintf(w, "  %-24s last reply: %s\n", "", clip(o.reply, 110))
		}
	}
	rec := d.node.TLSReports()
	today := time.Now()
	for _, domain := range rec.Domains(today) {
		rep := rec.Report(today, domain)
		if rep == nil {
			continue
		}
		var ok, failed int64
		var kinds []string
		for _, p := range rep.Policies {
			ok += p.Summary.Successful
			failed += p.Summary.Failed
			for _, f := range p.FailureDetails {
				kinds = append(kinds, fmt.Sprintf("%s ×%d", f.ResultType, f.FailedSessionCount))
			}
		}
		detail := ""
		if len(kinds) > 0 {
			detail = " (" + strings.Join(kinds, ", ") + ")"
		}
		fmt.Fprintf(w, "  TLS-RPT for %s: %d sessions succeeded, %d failed%s\n", domain, ok, failed, detail)
	}
}
