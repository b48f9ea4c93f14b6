package luart

import (
	"fmt"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/policy"
)

// maxProviderCache bounds the per-generation cache of MX host → provider;
// past it, lookups are still answered, just not remembered.
const maxProviderCache = 1 << 16

// providerSet recognises providers by MX host. It is built once per
// generation from rules/providers.lua and is read-only afterwards, apart
// from its cache.
type providerSet struct {
	patterns []mxPattern

	mu    sync.RWMutex
	cache map[string]string
}

// mxPattern is one entry of a provider's mx list. Patterns are matched
// against the whole MX host name, case-insensitively, without the trailing
// dot. "*" matches any run of characters, dots included, so "*.google.com"
// matches "alt1.aspmx.l.google.com" but not "google.com" itself.
type mxPattern struct {
	provider string
	glob     string
	// suffix is set for the common "*.domain" form, matched without the
	// general glob algorithm.
	suffix string
}

func (p *mxPattern) match(host string) bool {
	if p.suffix != "" {
		return len(host) > len(p.suffix) && strings.HasSuffix(host, p.suffix)
	}
	return globMatch(p.glob, host)
}

// globMatch reports whether s matches pattern, where "*" matches any run of
// characters and everything else matches itself.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// newProviderSet reads the providers list of rules/providers.lua.
func newProviderSet(file string, t *lua.LTable) (*providerSet, error) {
	ps := &providerSet{cache: make(map[string]string)}
	if t == nil {
		return ps, nil
	}
	list, ok := t.RawGetString("providers").(*lua.LTable)
	if !ok {
		if t.RawGetString("providers") == lua.LNil {
			return ps, nil
		}
		return nil, &ScriptError{File: file, Msg: "providers must be a list of provider tables"}
	}
	seen := map[string]bool{}
	for i := 1; i <= list.Len(); i++ {
		p, ok := list.RawGetInt(i).(*lua.LTable)
		if !ok {
			return nil, &ScriptError{File: file, Msg: fmt.Sprintf("providers[%d] is not a table", i)}
		}
		name, ok := p.RawGetString("name").(lua.LString)
		if !ok || name == "" {
			return nil, &ScriptError{File: file, Msg: fmt.Sprintf("providers[%d] has no name", i)}
		}
		if seen[string(name)] {
			return nil, &ScriptError{File: file, Msg: fmt.Sprintf("provider %q is listed twice", name)}
		}
		seen[string(name)] = true
		mx, ok := p.RawGetString("mx").(*lua.LTable)
		if !ok || mx.Len() == 0 {
			return nil, &ScriptError{File: file, Msg: fmt.Sprintf("provider %q has no mx patterns", name)}
		}
		for j := 1; j <= mx.Len(); j++ {
			pat, ok := mx.RawGetInt(j).(lua.LString)
			if !ok || pat == "" {
				return nil, &ScriptError{File: file, Msg: fmt.Sprintf("provider %q: mx[%d] is not a host pattern", name, j)}
			}
			ps.patterns = append(ps.patterns, compilePattern(string(name), string(pat)))
		}
	}
	return ps, nil
}

func compilePattern(provider, pat string) mxPattern {
	pat = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(pat)), ".")
	p := mxPattern{provider: provider, glob: pat}
	if rest, ok := strings.CutPrefix(pat, "*."); ok && !strings.Contains(rest, "*") {
		p.suffix = pat[1:]
	}
	return p
}

// lookup names the provider of an MX host: the first provider, in file
// order, with a matching pattern; for an unknown host, its registrable
// domain, so that all MX hosts of one operator still share a queue.
func (ps *providerSet) lookup(mxHost string) string {
	ps.mu.RLock()
	name, ok := ps.cache[mxHost]
	ps.mu.RUnlock()
	if ok {
		return name
	}
	host := strings.TrimSuffix(strings.ToLower(mxHost), ".")
	name = ""
	for i := range ps.patterns {
		if ps.patterns[i].match(host) {
			name = ps.patterns[i].provider
			break
		}
	}
	if name == "" {
		name = policy.RegistrableDomain(host)
	}
	ps.mu.Lock()
	if len(ps.cache) < maxProviderCache {
		ps.cache[mxHost] = name
	}
	ps.mu.Unlock()
	return name
}

// names returns the provider names in file order.
func (ps *providerSet) names() []string {
	var out []string
	for _, p := range ps.patterns {
		if len(out) == 0 || out[len(out)-1] != p.provider {
			out = append(out, p.provider)
		}
	}
	return out
}
