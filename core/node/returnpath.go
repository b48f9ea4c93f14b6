package node

import "slices"

// bounceDomain reports whether the bounce listener receives mail for
// domain (lower case): a tenant's bounce_domain or return_path_domain,
// whose MX is the listener. It reads the current policy, so a tenant added
// by a reload is served at once.
func (n *Node) bounceDomain(domain string) bool {
	for _, name := range n.policy.Status().Tenants {
		if t, ok := n.policy.Lookup(name); ok && slices.Contains(t.ReturnPath.Domains(), domain) {
			return true
		}
	}
	return false
}

// warnReturnPaths warns, at start, about tenants whose mail leaves with
// VERP addresses on a bounce or return-path domain while no bounce
// listener runs: their late bounces and complaints have nowhere to land.
func (n *Node) warnReturnPaths() {
	if n.cfg.BounceListen != "" {
		return
	}
	for _, name := range n.policy.Status().Tenants {
		if t, ok := n.policy.Lookup(name); ok && len(t.ReturnPath.Domains()) > 0 {
			n.log.Warn("a tenant's mail leaves with VERP addresses on its bounce or return-path domain, but there is no bounce listener: their bounces and complaints are lost; set --bounce-listen and point the domain's MX at it",
				"tenant", name, "domains", t.ReturnPath.Domains())
		}
	}
}
