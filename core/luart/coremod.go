package luart

import (
	"log/slog"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/address"
	"corriere/core/policy"
)

// coreModule returns the loader of the "core" module of state st: what the
// core exposes to every hook (egress sources, live counters, a stable hash,
// the clock, logging). Its functions are documented in doc.go.
func coreModule(st *state) loader {
	return func(L *lua.LState) (lua.LValue, error) {
		e := st.gen.engine
		mod := L.NewTable()
		sources := L.CreateTable(len(e.opts.Sources), 0)
		for _, s := range e.opts.Sources {
			t := L.CreateTable(0, 2)
			t.RawSetString("ip", lua.LString(s.IP))
			t.RawSetString("helo", lua.LString(s.Helo))
			sources.Append(t)
		}
		L.SetFuncs(mod, map[string]lua.LGFunction{
			"sources": func(L *lua.LState) int {
				L.Push(sources)
				return 1
			},
			"counts": func(L *lua.LState) int {
				window := 5 * time.Minute
				if L.GetTop() >= 4 {
					window = checkDuration(L, 4)
				}
				var c policy.Counts
				if e.opts.Counters != nil {
					c = e.opts.Counters.Counts(L.OptString(1, ""), L.OptString(2, ""), L.OptString(3, ""), window)
				}
				L.Push(countsTable(L, c))
				return 1
			},
			"tenant_counts": func(L *lua.LState) int {
				tenant := L.CheckString(1)
				window := 5 * time.Minute
				if L.GetTop() >= 2 {
					window = checkDuration(L, 2)
				}
				var c policy.Counts
				if tc, ok := e.opts.Counters.(tenantCounters); ok {
					c = tc.TenantCounts(tenant, window)
				}
				L.Push(countsTable(L, c))
				return 1
			},
			"reputation": func(L *lua.LState) int {
				window := 24 * time.Hour
				if L.GetTop() >= 4 {
					window = checkDuration(L, 4)
				}
				var c policy.ReputationCounts
				if e.opts.Reputation != nil {
					c = e.opts.Reputation.Reputation(L.CheckString(1), L.OptString(2, ""), L.OptString(3, ""), window)
				}
				t := L.CreateTable(0, 9)
				for k, v := range map[string]int64{"sent": c.Sent, "delivered": c.Delivered, "deferred": c.Deferred,
					"bounced": c.Bounced, "complained": c.Complained, "opened": c.Opened, "clicked": c.Clicked,
					"machine_opened": c.MachineOpened, "scanner_clicked": c.ScannerClicked} {
					t.RawSetString(k, lua.LNumber(v))
				}
				L.Push(t)
				return 1
			},
			"hash": coreHash,
			"now": func(L *lua.LState) int {
				L.Push(lua.LNumber(float64(e.now().UnixMilli()) / 1000))
				return 1
			},
			"duration": func(L *lua.LState) int {
				L.Push(lua.LNumber(checkDuration(L, 1).Seconds()))
				return 1
			},
			"domain": func(L *lua.LState) int {
				return optString(L, address.Domain(L.CheckString(1)))
			},
			"provider": func(L *lua.LState) int {
				L.Push(lua.LString(st.gen.provider(L.CheckString(1))))
				return 1
			},
			"log": func(L *lua.LState) int {
				coreLog(L, e.log, st)
				return 0
			},
		})
		return mod, nil
	}
}

// tenantCounters is implemented by counters that also count per tenant
// (*stats.Counters does).
type tenantCounters interface {
	TenantCounts(tenant string, window time.Duration) policy.Counts
}

// countsTable returns c as the table core.counts and core.tenant_counts
// return.
func countsTable(L *lua.LState, c policy.Counts) *lua.LTable {
	t := L.CreateTable(0, 5)
	t.RawSetString("attempted", lua.LNumber(c.Attempted))
	t.RawSetString("delivered", lua.LNumber(c.Delivered))
	t.RawSetString("deferred", lua.LNumber(c.Deferred))
	t.RawSetString("bounced", lua.LNumber(c.Bounced))
	t.RawSetString("complained", lua.LNumber(c.Complained))
	return t
}

// coreHash returns a stable non-negative integer for its arguments (FNV-1a
// over their string forms), the same on every node and after restarts, so
// that "same kind, same sender, same provider" keeps mapping to one IP.
func coreHash(L *lua.LState) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			h *= prime32 // a zero byte between arguments: hash("ab", "c") differs from hash("a", "bc")
		}
		s := L.Get(i).String()
		for j := 0; j < len(s); j++ {
			h ^= uint32(s[j])
			h *= prime32
		}
	}
	L.Push(lua.LNumber(h))
	return 1
}

// checkDuration reads argument n as a duration: a number of seconds or a
// Go duration string such as "90s", "15m" or "1h30m".
func checkDuration(L *lua.LState, n int) time.Duration {
	d, err := toDuration(L.Get(n))
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return d
}

// coreLog logs a message from a script at info level: core.log(message,
// key, value, ...). The hook, tenant and message id of the current call are
// attached.
func coreLog(L *lua.LState, log *slog.Logger, st *state) {
	msg := L.CheckString(1)
	attrs := make([]any, 0, 8+L.GetTop())
	if st.hook >= 0 {
		attrs = append(attrs, "hook", hookNames[st.hook])
	}
	if st.tenant != "" {
		attrs = append(attrs, "tenant", st.tenant)
	}
	if st.msgID != "" {
		attrs = append(attrs, "msg_id", st.msgID)
	}
	for i := 2; i <= L.GetTop(); i += 2 {
		key := strings.TrimSpace(L.Get(i).String())
		var val any = lua.LNil.String()
		if i+1 <= L.GetTop() {
			val = luaToAny(L.Get(i + 1))
		}
		attrs = append(attrs, key, val)
	}
	log.Info("luart: "+msg, attrs...)
}

// luaToAny converts a scalar Lua value for logging.
func luaToAny(v lua.LValue) any {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return float64(v)
	case lua.LBool:
		return bool(v)
	default:
		return v.String()
	}
}
