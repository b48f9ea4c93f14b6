package luart

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/crypto/bcrypt"

	"corriere/core/policy"
	"corriere/core/tenant"
)

// The rules files are data for the scripts, but some of it the core needs
// too (tenant accounts, MX patterns) and all of it is checked when a
// generation loads, so that a typo in an IP address or a pool name refuses
// the generation instead of surfacing on the first delivery.

// toTenant reads a rules/tenants/<name>.lua table. Fields the Go side does
// not know (classification rules, unsubscribe addresses) are left to the
// scripts.
func toTenant(src *source, t *lua.LTable) (*tenant.Tenant, error) {
	fail := func(format string, args ...any) error {
		return &ScriptError{File: src.rel, Msg: fmt.Sprintf(format, args...)}
	}
	tn := &tenant.Tenant{Name: src.name, SuppressionMode: "reject"}
	if name, ok := t.RawGetString("name").(lua.LString); ok && string(name) != src.name {
		return nil, fail("name = %q, but the file is named after tenant %q", name, src.name)
	}
	if t.RawGetString("password") != lua.LNil {
		return nil, fail("plain-text password field; store only password_hash (make one with `corriere rules passwd`)")
	}
	switch h := t.RawGetString("password_hash").(type) {
	case *lua.LNilType:
	case lua.LString:
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fail("password_hash is not a bcrypt hash (make one with `corriere rules passwd`)")
		}
		tn.PasswordHash = string(h)
	default:
		return nil, fail("password_hash must be a string")
	}
	switch d := t.RawGetString("sender_domains").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		for i := 1; i <= d.Len(); i++ {
			s, ok := d.RawGetInt(i).(lua.LString)
			if !ok || s == "" {
				return nil, fail("sender_domains[%d] is not a domain", i)
			}
			tn.SenderDomains = append(tn.SenderDomains, strings.ToLower(string(s)))
		}
	default:
		return nil, fail("sender_domains must be a list of domains")
	}
	switch r := t.RawGetString("reenvelope").(type) {
	case *lua.LNilType:
	case lua.LBool:
		tn.Reenvelope = bool(r)
	default:
		return nil, fail("reenvelope must be true or false")
	}
	switch d := t.RawGetString("bounce_domain").(type) {
	case *lua.LNilType:
		if tn.Reenvelope {
			return nil, fail("reenvelope = true needs bounce_domain: the domain of the envelope sender, whose MX is the bounce listener")
		}
	case lua.LString:
		if !strings.Contains(string(d), ".") || strings.ContainsAny(string(d), "@ \t") {
			return nil, fail("bounce_domain = %q is not a domain name", d)
		}
		tn.ReturnPath.BounceDomain = strings.ToLower(string(d))
	default:
		return nil, fail("bounce_domain must be a domain name")
	}
	switch d := t.RawGetString("return_path_domain").(type) {
	case *lua.LNilType:
	case lua.LString:
		var err error
		if tn.ReturnPath.Domain, err = tenant.CheckDomain("return_path_domain", string(d)); err != nil {
			return nil, fail("%v", err)
		}
	default:
		return nil, fail("return_path_domain must be a domain name")
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"null_sender", &tn.NullSender}, {"address_literals", &tn.AddressLiterals}} {
		switch v := t.RawGetString(f.name).(type) {
		case *lua.LNilType:
		case lua.LBool:
			*f.dst = bool(v)
		default:
			return nil, fail("%s must be true or false", f.name)
		}
	}
	switch s := t.RawGetString("suppression").(type) {
	case *lua.LNilType:
	case lua.LString:
		if s != "reject" && s != "drop" {
			return nil, fail("suppression = %q; want \"reject\" or \"drop\"", s)
		}
		tn.SuppressionMode = string(s)
	default:
		return nil, fail("suppression must be \"reject\" or \"drop\"")
	}
	if err := readTenantHTTP(tn, t, fail); err != nil {
		return nil, err
	}
	return tn, nil
}

// checkPools validates rules/pools.lua (its format is described in the
// file itself) and returns its warm-up schedules by IP and its pool names,
// sorted.
func checkPools(file string, t *lua.LTable) (map[string]policy.Warmup, []string, error) {
	warmups := map[string]policy.Warmup{}
	err := checkPoolsTable(file, t, warmups)
	var names []string
	if pools, ok := t.RawGetString("pools").(*lua.LTable); ok && err == nil {
		pools.ForEach(func(k, _ lua.LValue) { names = append(names, k.String()) })
		sort.Strings(names)
	}
	return warmups, names, err
}

func checkPoolsTable(file string, t *lua.LTable, warmups map[string]policy.Warmup) error {
	fail := func(format string, args ...any) error {
		return &ScriptError{File: file, Msg: fmt.Sprintf(format, args...)}
	}
	pools, ok := t.RawGetString("pools").(*lua.LTable)
	if !ok {
		return fail("pools must be a table of named pools")
	}
	names := map[string]bool{}
	var err error
	pools.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		p, ok := v.(*lua.LTable)
		if _, isName := k.(lua.LString); !isName || !ok {
			err = fail("pools.%s must be a table", k)
			return
		}
		names[k.String()] = true
		err = checkIPList(file, "pools."+k.String()+".ips", p.RawGetString("ips"))
	})
	if err != nil {
		return err
	}
	if err := checkIPList(file, "reserve", t.RawGetString("reserve")); err != nil {
		return err
	}
	for _, field := range []string{"classes", "tenants"} {
		switch m := t.RawGetString(field).(type) {
		case *lua.LNilType:
		case *lua.LTable:
			m.ForEach(func(k, v lua.LValue) {
				if err == nil && !names[v.String()] {
					err = fail("%s.%s = %q: there is no such pool", field, k, v)
				}
			})
		default:
			return fail("%s must be a table", field)
		}
	}
	if err != nil {
		return err
	}
	switch w := t.RawGetString("warmup").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		w.ForEach(func(k, v lua.LValue) {
			if err != nil {
				return
			}
			if _, perr := netip.ParseAddr(k.String()); perr != nil {
				err = fail("warmup[%q]: not an IP address", k)
				return
			}
			lt, ok := v.(*lua.LTable)
			if !ok {
				err = fail("warmup[%q] must be a limits table", k)
				return
			}
			lt.ForEach(func(lk, _ lua.LValue) {
				if err == nil && !contains(limitFields, lk.String()) && lk.String() != "start" && lk.String() != "daily" {
					err = fail("warmup[%q]: unknown field %s (known: start, daily, %s)", k, lk, strings.Join(limitFields, ", "))
				}
			})
			if err != nil {
				return
			}
			w, ok, werr := toWarmup(lt)
			if werr != nil {
				err = fail("warmup[%q]: %v", k, werr)
				return
			}
			if ok {
				ip, _ := netip.ParseAddr(k.String())
				warmups[ip.String()] = w
			}
		})
	default:
		return fail("warmup must be a table keyed by IP address")
	}
	return err
}

// toWarmup reads the schedule fields of a warmup entry: start (a UTC date
// "YYYY-MM-DD") and daily (caps per provider for day 1, 2, ...). Both or
// neither must be present.
func toWarmup(t *lua.LTable) (policy.Warmup, bool, error) {
	start, daily := t.RawGetString("start"), t.RawGetString("daily")
	if start == lua.LNil && daily == lua.LNil {
		return policy.Warmup{}, false, nil
	}
	s, ok := start.(lua.LString)
	if !ok {
		return policy.Warmup{}, false, fmt.Errorf("start must be a date such as \"2026-11-20\" when daily is set")
	}
	day, err := time.Parse("2006-01-02", string(s))
	if err != nil {
		return policy.Warmup{}, false, fmt.Errorf("start = %q: want a date such as \"2026-11-20\"", s)
	}
	list, ok := daily.(*lua.LTable)
	if !ok || list.Len() == 0 {
		return policy.Warmup{}, false, fmt.Errorf("daily must be a list of caps per provider, one per day, e.g. { 50, 100, 200 }")
	}
	w := policy.Warmup{Start: day}
	for i := 1; i <= list.Len(); i++ {
		n, ok := list.RawGetInt(i).(lua.LNumber)
		if !ok || n < 0 {
			return policy.Warmup{}, false, fmt.Errorf("daily[%d] is not a number of messages", i)
		}
		w.Daily = append(w.Daily, int(n))
	}
	return w, true, nil
}

// checkIPList validates a list of {ip=, helo=, weight=} entries.
func checkIPList(file, field string, v lua.LValue) error {
	fail := func(format string, args ...any) error {
		return &ScriptError{File: file, Msg: field + fmt.Sprintf(format, args...)}
	}
	switch list := v.(type) {
	case *lua.LNilType:
		return nil
	case *lua.LTable:
		for i := 1; i <= list.Len(); i++ {
			e, ok := list.RawGetInt(i).(*lua.LTable)
			if !ok {
				return fail("[%d] must be a table {ip=, helo=, weight=}", i)
			}
			ip, _ := e.RawGetString("ip").(lua.LString)
			if _, err := netip.ParseAddr(string(ip)); err != nil {
				return fail("[%d].ip = %q: not an IP address", i, string(ip))
			}
			if w := e.RawGetString("weight"); w != lua.LNil {
				if n, ok := w.(lua.LNumber); !ok || n < 0 {
					return fail("[%d].weight must be a number >= 0", i)
				}
			}
		}
		return nil
	default:
		return fail(" must be a list of {ip=, helo=, weight=} tables")
	}
}
