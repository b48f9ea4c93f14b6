package luart

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/policy"
)

// checkTLSRules validates rules/tls.lua: default is a TLS policy name, and
// classes, providers and tenants map names to TLS policy names, so that a
// typo refuses the generation instead of failing route on the first
// delivery it concerns.
func checkTLSRules(file string, t *lua.LTable) error {
	fail := func(format string, args ...any) error {
		return &ScriptError{File: file, Msg: fmt.Sprintf(format, args...)}
	}
	check := func(where string, v lua.LValue) error {
		s, ok := v.(lua.LString)
		if !ok {
			return fail("%s must be a string", where)
		}
		if _, err := policy.ParseTLSPolicy(string(s)); err != nil {
			return fail("%s: %v", where, err)
		}
		return nil
	}
	if v := t.RawGetString("default"); v != lua.LNil {
		if err := check("default", v); err != nil {
			return err
		}
	}
	for _, name := range []string{"classes", "providers", "tenants"} {
		var err error
		switch m := t.RawGetString(name).(type) {
		case *lua.LNilType:
		case *lua.LTable:
			m.ForEach(func(k, v lua.LValue) {
				if err == nil {
					err = check(name+"."+k.String(), v)
				}
			})
		default:
			err = fail("%s must be a table of names to TLS policies", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
