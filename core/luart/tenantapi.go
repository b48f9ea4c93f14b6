package luart

import (
	lua "github.com/yuin/gopher-lua"

	"corriere/core/tenant"
)

// readTenantHTTP reads the fields of a tenant file that concern HTTP: the
// hashed API keys of the injection API (api_keys) and the webhooks.
func readTenantHTTP(tn *tenant.Tenant, t *lua.LTable, fail func(format string, args ...any) error) error {
	switch keys := t.RawGetString("api_keys").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		for i := 1; i <= keys.Len(); i++ {
			h, ok := keys.RawGetInt(i).(lua.LString)
			if !ok {
				return fail("api_keys[%d] must be a string", i)
			}
			if err := tenant.CheckAPIKeyHash(string(h)); err != nil {
				return fail("api_keys[%d]: %v", i, err)
			}
			tn.APIKeyHashes = append(tn.APIKeyHashes, string(h))
		}
	default:
		return fail("api_keys must be a list of API key hashes")
	}
	hooks, ok := t.RawGetString("webhooks").(*lua.LTable)
	if !ok {
		if t.RawGetString("webhooks") != lua.LNil {
			return fail("webhooks must be a list of { url =, events = {...}, secret = }")
		}
		return nil
	}
	for i := 1; i <= hooks.Len(); i++ {
		h, ok := hooks.RawGetInt(i).(*lua.LTable)
		if !ok {
			return fail("webhooks[%d] must be a table { url =, events = {...}, secret = }", i)
		}
		w := tenant.Webhook{URL: luaString(h.RawGetString("url")), Secret: luaString(h.RawGetString("secret"))}
		switch ev := h.RawGetString("events").(type) {
		case *lua.LNilType:
		case *lua.LTable:
			for j := 1; j <= ev.Len(); j++ {
				w.Events = append(w.Events, luaString(ev.RawGetInt(j)))
			}
		default:
			return fail("webhooks[%d].events must be a list of event names", i)
		}
		if err := w.Check(); err != nil {
			return fail("webhooks[%d]: %v", i, err)
		}
		tn.Webhooks = append(tn.Webhooks, w)
	}
	return nil
}

// luaString returns v when it is a string, and "" otherwise.
func luaString(v lua.LValue) string {
	if s, ok := v.(lua.LString); ok {
		return string(s)
	}
	return ""
}
