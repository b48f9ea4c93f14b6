package dkim

import "corriere/core/dnscheck"

// DNSCheckKeys lists the keys of r as the DNS check (core/dnscheck) compares
// them with the published records.
func DNSCheckKeys(r *Rules) []dnscheck.Key {
	var out []dnscheck.Key
	for _, k := range r.Keys() {
		out = append(out, dnscheck.Key{Domain: k.Domain, Selector: k.Selector, Record: k.Record, Active: k.Active})
	}
	return out
}

// DNSCheckKeys implements dnscheck.KeyLister: the keys the plugin signs
// with now, none before the policy is loaded.
func (p *Plugin) DNSCheckKeys() []dnscheck.Key {
	r := p.rules.Load()
	if r == nil {
		return nil
	}
	return DNSCheckKeys(r)
}

var _ dnscheck.KeyLister = (*Plugin)(nil)
