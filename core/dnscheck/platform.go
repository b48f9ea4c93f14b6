package dnscheck

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/luadata"
)

// Source is one egress IP and the name it greets with.
type Source struct {
	IP netip.Addr `json:"ip"`
	// HELO is the EHLO name; it should resolve to IP, and IP's PTR to it.
	HELO string `json:"helo"`
}

// Key is one DKIM key of rules/dkim.lua, as the dkim plugin lists it.
type Key struct {
	// Domain is the signing domain (d=), Selector the key's s=.
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	// Record is the TXT value that publishes the key's public half,
	// "v=DKIM1; k=rsa; p=...".
	Record string `json:"record"`
	// Active is true when the key signs now, false while it waits in a
	// rotation.
	Active bool `json:"active"`
}

// KeyLister is the optional capability of the plugin that signs
// (plugins/dkim): the keys of the rules it signs with now, for the node's
// daily re-check.
type KeyLister interface {
	DNSCheckKeys() []Key
}

// Tenant is what the checks need of a tenant of rules/tenants.
type Tenant struct {
	Name string `json:"name"`
	// SenderDomains are the domains the tenant sends From:.
	SenderDomains []string `json:"sender_domains"`
	// Reenvelope moves the envelope sender to BounceDomain.
	Reenvelope   bool   `json:"reenvelope"`
	BounceDomain string `json:"bounce_domain,omitempty"`
	// ReturnPathDomain, when set, is the domain of the envelope sender of
	// the tenant's mail that is not re-enveloped.
	ReturnPathDomain string `json:"return_path_domain,omitempty"`
	// DKIMDomain is the domain that signs the tenant's mail when its
	// From: domain has no key of its own ("" for none).
	DKIMDomain string `json:"dkim_domain,omitempty"`
}

// Platform is the platform's own settings the checks compare DNS with.
type Platform struct {
	// Sources are the egress IPs: those of rules/pools.lua (pools and
	// reserve), or the node's configured sources when the pools name none.
	Sources []Source `json:"sources"`
	// Keys are the DKIM keys of rules/dkim.lua.
	Keys []Key `json:"keys"`
	// PlatformDKIMDomain is the domain that signs re-enveloped mail.
	PlatformDKIMDomain string `json:"platform_dkim_domain,omitempty"`
	// SubdomainSigners are the signing domains that also sign mail From:
	// their subdomains (subdomains = true in rules/dkim.lua).
	SubdomainSigners []string `json:"subdomain_signers,omitempty"`
	// Tenants are the tenants of rules/tenants, by name.
	Tenants map[string]Tenant `json:"tenants"`
	// BounceListener is the address of the bounce listener: the MX of
	// every bounce and return-path domain must reach it. Empty when the
	// node runs none.
	BounceListener string `json:"bounce_listener,omitempty"`
}

// EnvelopeDomain is the domain of the envelope sender (MAIL FROM) of the
// tenant's mail From: domain: the bounce domain when the tenant
// re-envelopes, its return-path domain when it has one, else the From:
// domain itself.
func (t *Tenant) EnvelopeDomain(from string) string {
	switch {
	case t == nil:
		return from
	case t.Reenvelope && t.BounceDomain != "":
		return t.BounceDomain
	case t.ReturnPathDomain != "":
		return t.ReturnPathDomain
	}
	return from
}

// TenantOf returns the tenant whose sender_domains hold domain (or a parent
// of it), the first by name.
func (p *Platform) TenantOf(domain string) (Tenant, bool) {
	names := make([]string, 0, len(p.Tenants))
	for n := range p.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, d := range p.Tenants[n].SenderDomains {
			if domain == d || strings.HasSuffix(domain, "."+d) {
				return p.Tenants[n], true
			}
		}
	}
	return Tenant{}, false
}

// BounceDomains returns the bounce and return-path domains of the tenants,
// sorted, each once.
func (p *Platform) BounceDomains() []string {
	var out []string
	for _, t := range p.Tenants {
		for _, d := range []string{t.BounceDomain, t.ReturnPathDomain} {
			if d != "" && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// LoadRules reads the sources of rules/pools.lua and the tenants of
// rules/tenants/*.lua under rulesDir into p, and p.PlatformDKIMDomain,
// p.SubdomainSigners and the tenants' DKIM domain from rules/dkim.lua (the
// keys themselves come from the dkim plugin). Sources already in p (the
// node's configured ones) are kept only when the pools name no IP.
func (p *Platform) LoadRules(rulesDir string) error {
	pools, err := luadata.LoadFile(filepath.Join(rulesDir, "pools.lua"), luadata.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("dnscheck: %w", err)
	default:
		var sources []Source
		if t, ok := pools.RawGetString("pools").(*lua.LTable); ok {
			t.ForEach(func(_, pool lua.LValue) {
				if pt, ok := pool.(*lua.LTable); ok {
					sources = appendIPs(sources, pt.RawGetString("ips"))
				}
			})
		}
		sources = appendIPs(sources, pools.RawGetString("reserve"))
		if len(sources) > 0 {
			p.Sources = sources
		}
	}
	if p.Tenants == nil {
		p.Tenants = map[string]Tenant{}
	}
	files, err := filepath.Glob(filepath.Join(rulesDir, "tenants", "*.lua"))
	if err != nil {
		return fmt.Errorf("dnscheck: %w", err)
	}
	for _, f := range files {
		t, err := luadata.LoadFile(f, luadata.Options{})
		if err != nil {
			return fmt.Errorf("dnscheck: %w", err)
		}
		tn := Tenant{Name: strings.TrimSuffix(filepath.Base(f), ".lua")}
		if l, ok := t.RawGetString("sender_domains").(*lua.LTable); ok {
			for i := 1; i <= l.Len(); i++ {
				tn.SenderDomains = append(tn.SenderDomains, strings.ToLower(lua.LVAsString(l.RawGetInt(i))))
			}
		}
		tn.Reenvelope = lua.LVAsBool(t.RawGetString("reenvelope"))
		tn.BounceDomain = strings.ToLower(lua.LVAsString(t.RawGetString("bounce_domain")))
		tn.ReturnPathDomain = strings.ToLower(lua.LVAsString(t.RawGetString("return_path_domain")))
		p.Tenants[tn.Name] = tn
	}
	dkim, err := luadata.LoadFile(filepath.Join(rulesDir, "dkim.lua"), luadata.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("dnscheck: %w", err)
	default:
		p.PlatformDKIMDomain = strings.ToLower(lua.LVAsString(dkim.RawGetString("platform")))
		if domains, ok := dkim.RawGetString("domains").(*lua.LTable); ok {
			domains.ForEach(func(k, v lua.LValue) {
				if dv, ok := v.(*lua.LTable); ok && lua.LVAsBool(dv.RawGetString("subdomains")) {
					p.SubdomainSigners = append(p.SubdomainSigners, strings.ToLower(lua.LVAsString(k)))
				}
			})
			sort.Strings(p.SubdomainSigners)
		}
		if tenants, ok := dkim.RawGetString("tenants").(*lua.LTable); ok {
			tenants.ForEach(func(k, v lua.LValue) {
				tv, ok := v.(*lua.LTable)
				tn, known := p.Tenants[lua.LVAsString(k)]
				if ok && known {
					tn.DKIMDomain = strings.ToLower(lua.LVAsString(tv.RawGetString("domain")))
					p.Tenants[tn.Name] = tn
				}
			})
		}
	}
	return nil
}

// appendIPs appends the {ip=, helo=} entries of a list.
func appendIPs(out []Source, v lua.LValue) []Source {
	l, ok := v.(*lua.LTable)
	if !ok {
		return out
	}
	for i := 1; i <= l.Len(); i++ {
		e, ok := l.RawGetInt(i).(*lua.LTable)
		if !ok {
			continue
		}
		ip, err := netip.ParseAddr(lua.LVAsString(e.RawGetString("ip")))
		if err != nil {
			continue
		}
		s := Source{IP: ip, HELO: strings.ToLower(lua.LVAsString(e.RawGetString("helo")))}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// listenerIP returns the IP of a listener address, invalid when it listens
// on every address or has none.
func listenerIP(addr string) (netip.Addr, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, port
	}
	return ip, port
}
