package node

import (
	"io/fs"
	"regexp"
	"strings"
	"sync"

	"corriere"
)

// warnSetup logs, once at start, the settings that work but will surprise
// whoever runs the node in production: each names what to change.
func (n *Node) warnSetup() {
	if !strings.Contains(strings.TrimSuffix(n.cfg.Hostname, "."), ".") {
		n.log.Warn("the hostname is not fully qualified: many receivers refuse such an EHLO name; set --hostname to the name whose A and PTR records match the sending address",
			"hostname", n.cfg.Hostname)
	}
	tenants := n.policy.Status().Tenants
	if len(tenants) > 0 && n.cfg.TLSCert == "" {
		if n.cfg.InsecureAuthLoopback {
			n.log.Warn("AUTH is offered only to loopback clients: there is no --tls-cert, and AUTH is never offered in clear to others",
				"tenants", len(tenants))
		} else {
			n.log.Warn("AUTH is not offered, so no tenant can authenticate: it needs STARTTLS; give --tls-cert and --tls-key (or --insecure-auth-loopback for local tests)",
				"tenants", len(tenants))
		}
	}
	n.warnReturnPaths()
	demo := demoPasswordHashes()
	for _, name := range tenants {
		if t, ok := n.policy.Lookup(name); ok && t.PasswordHash != "" && demo[t.PasswordHash] {
			n.log.Warn("a tenant uses the demo password published in Corriere's repository: anyone can send as it; set a new password_hash (corriere rules passwd) or delete the tenant",
				"tenant", name)
		}
	}
}

// passwordHashField finds the password hashes of the default policy's
// tenant files.
var passwordHashField = regexp.MustCompile(`password_hash\s*=\s*"([^"]+)"`)

// demoPasswordHashes are the password hashes of the tenants shipped in the
// default policy, whose passwords are published.
var demoPasswordHashes = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	rules := corriere.Rules()
	names, _ := fs.Glob(rules, "tenants/*.lua")
	for _, name := range names {
		data, err := fs.ReadFile(rules, name)
		if err != nil {
			continue
		}
		for _, m := range passwordHashField.FindAllSubmatch(data, -1) {
			out[string(m[1])] = true
		}
	}
	return out
})
