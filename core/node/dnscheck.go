package node

import (
	"context"
	"fmt"
	"net/netip"

	"corriere/core/dns"
	"corriere/core/dnscheck"
	"corriere/core/spf"
)

// startDNSCheck makes the monitor that re-checks every tenant's sender
// domains (Config.DNSCheckInterval) and registers its metrics; it does not
// run until serve.
func (n *Node) startDNSCheck() {
	if n.cfg.DNSCheckInterval < 0 {
		return
	}
	n.dnsCheck = dnscheck.NewMonitor(dnscheck.MonitorOptions{
		Checker: n.dnsChecker, Interval: n.cfg.DNSCheckInterval, Events: n.events, Logger: n.log,
	})
	for _, c := range n.dnsCheck.Collectors() {
		n.metrics.Registry().MustRegister(c)
	}
}

// runDNSCheck starts the monitor's schedule, which ends with ctx.
func (n *Node) runDNSCheck(ctx context.Context) {
	if n.dnsCheck == nil {
		return
	}
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		n.dnsCheck.Run(ctx)
	}()
}

// dnsChecker returns a Checker with the settings in force: the sources, the
// rules directory as it is now, and the keys the dkim plugin signs with.
func (n *Node) dnsChecker() (*dnscheck.Checker, error) {
	p := &dnscheck.Platform{BounceListener: n.cfg.BounceListen}
	for _, s := range n.cfg.Sources {
		ip, err := netip.ParseAddr(s.IP)
		if err != nil {
			continue // Validate refused it at start
		}
		helo := s.Helo
		if helo == "" {
			helo = n.cfg.Hostname
		}
		p.Sources = append(p.Sources, dnscheck.Source{IP: ip, HELO: helo})
	}
	if err := p.LoadRules(n.cfg.RulesDir); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for _, l := range implementers[dnscheck.KeyLister](n.plugins) {
		p.Keys = append(p.Keys, l.DNSCheckKeys()...)
	}
	opts := dns.Options{Servers: n.cfg.DNSServers}
	opts.EnsureDefaults()
	return &dnscheck.Checker{
		Resolver: &spf.DNS{Server: opts.Servers[0], Timeout: opts.Timeout},
		Platform: p, Hostname: n.cfg.Hostname,
	}, nil
}
