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
