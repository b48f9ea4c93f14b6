package luart

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
)

// The return tables of the hooks are read strictly: an unknown key or a
// value of the wrong type is an error of the hook (usually a typo such as
// "clas"), reported at the hook's definition, so that a mistake shows up
// in `corriere rules check` instead of being silently ignored.

// result reads one returned table; the first problem found is kept in err.
type result struct {
	t   *lua.LTable
	fn  *lua.LFunction
	h   hookID
	err *ScriptError
}

func newResult(v lua.LValue, fn *lua.LFunction, h hookID) (result, *ScriptError) {
	t, ok := v.(*lua.LTable)
	if !ok {
		return result{}, resultError(fn, h, "%s; want a table", v.Type())
	}
	return result{t: t, fn: fn, h: h}, nil
}

func (r *result) fail(format string, args ...any) {
	if r.err == nil {
		r.err = resultError(r.fn, r.h, format, args...)
	}
}

// known fails when the table has a key outside names.
func (r *result) known(names []string) {
	for k, _ := r.t.Next(lua.LNil); k != lua.LNil; k, _ = r.t.Next(k) {
		s, ok := k.(lua.LString)
		if !ok || !contains(names, string(s)) {
			r.fail("a table with unknown field %s (known fields: %s)", k, strings.Join(names, ", "))
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (r *result) str(name string) string {
	switch v := r.t.RawGetString(name).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	default:
		r.fail("%s = %s; want a string", name, v.Type())
		return ""
	}
}

func (r *result) num(name string) float64 {
	switch v := r.t.RawGetString(name).(type) {
	case *lua.LNilType:
		return 0
	case lua.LNumber:
		f := float64(v)
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			r.fail("%s = %v; want a number >= 0", name, f)
			return 0
		}
		return f
	default:
		r.fail("%s = %s; want a number", name, v.Type())
		return 0
	}
}

func (r *result) integer(name string) int {
	f := r.num(name)
	if f > math.MaxInt32 || f != math.Trunc(f) {
		r.fail("%s = %v; want a whole number", name, f)
		return 0
	}
	return int(f)
}

func (r *result) boolean(name string) bool {
	switch v := r.t.RawGetString(name).(type) {
	case *lua.LNilType:
		return false
	case lua.LBool:
		return bool(v)
	default:
		r.fail("%s = %s; want true or false", name, v.Type())
		return false
	}
}

func (r *result) duration(name string) time.Duration {
	d, err := toDuration(r.t.RawGetString(name))
	if err != nil {
		r.fail("%s: %v", name, err)
	}
	return d
}

// toDuration reads a delay: a number of seconds, or a Go duration string
// ("90s", "15m", "1h30m"); nil is zero.
func toDuration(v lua.LValue) (time.Duration, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return 0, nil
	case lua.LNumber:
		if v < 0 || math.IsNaN(float64(v)) || float64(v) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%v seconds is not a valid duration", float64(v))
		}
		return time.Duration(float64(v) * float64(time.Second)), nil
	case lua.LString:
		if n, err := strconv.ParseFloat(string(v), 64); err == nil {
			return toDuration(lua.LNumber(n))
		}
		d, err := time.ParseDuration(string(v))
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration (write \"90s\", \"15m\", \"2h\" or a number of seconds)", string(v))
		}
		return d, nil
	default:
		return 0, fmt.Errorf("%s is not a duration", v.Type())
	}
}

var classifyFields = []string{"tenant", "class", "campaign", "priority"}

// toClassification reads classify's table. Tenant defaults to the
// message's tenant; class is required.
func toClassification(v lua.LValue, fn *lua.LFunction, m *message.Message) (policy.Classification, *ScriptError) {
	r, err := newResult(v, fn, hClassify)
	if err != nil {
		return policy.Classification{}, err
	}
	r.known(classifyFields)
	c := policy.Classification{
		Tenant:   r.str("tenant"),
		Campaign: r.str("campaign"),
	}
	if c.Tenant == "" {
		c.Tenant = m.Tenant
	}
	if p, ok := r.t.RawGetString("priority").(lua.LNumber); ok {
		c.Priority = int(p)
	} else {
		r.integer("priority")
	}
	class := r.str("class")
	if cl, ok := message.ParseClass(class); ok {
		c.Class = cl
	} else if r.err == nil {
		r.fail("class %q; want newsletter, transactional, critical or personal", class)
	}
	return c, r.err
}

var routeFields = []string{"pool", "source", "helo", "tls"}

// toRoute reads route's table. Source must be an IP address or empty;
// a missing helo is taken from the node's configured sources.
func toRoute(v lua.LValue, fn *lua.LFunction, sources []policy.Source) (policy.Route, *ScriptError) {
	r, err := newResult(v, fn, hRoute)
	if err != nil {
		return policy.Route{}, err
	}
	r.known(routeFields)
	rt := policy.Route{Pool: r.str("pool"), Source: r.str("source"), Helo: r.str("helo")}
	if name := r.str("tls"); name != "" {
		tlsPolicy, terr := policy.ParseTLSPolicy(name)
		if terr != nil {
			r.fail("%v", terr)
		}
		if tlsPolicy != policy.TLSAuto {
			rt.TLS = tlsPolicy // auto stays the zero value, as when absent
		}
	}
	if rt.Source != "" {
		if _, perr := netip.ParseAddr(rt.Source); perr != nil && r.err == nil {
			r.fail("source %q; want an IP address", rt.Source)
		}
	}
	if rt.Helo == "" {
		for _, s := range sources {
			if s.IP == rt.Source {
				rt.Helo = s.Helo
				break
			}
		}
	}
	return rt, r.err
}

// limitFields are the keys of a limits table, in shape's return value and
// in rules/providers.lua.
var limitFields = []string{
	"connections", "messages_per_connection", "recipients_per_message",
	"per_second", "per_minute", "per_hour", "per_day", "burst", "critical_reserve",
	"suspend_delay", "recovery_interval", "recovery_step",
}

// toLimits reads shape's table. A missing critical_reserve is
// policy.DefaultCriticalReserve where per_hour or per_day is set: the core
// keeps critical mail's share of those volumes unless the policy says
// otherwise. A missing suspend_delay, recovery_interval or recovery_step
// stays zero, which the queue reads as the policy package's default; a
// present one must be usable (a duration above zero, a step above 1).
func toLimits(v lua.LValue, fn *lua.LFunction) (policy.Limits, *ScriptError) {
	r, err := newResult(v, fn, hShape)
	if err != nil {
		return policy.Limits{}, err
	}
	r.known(limitFields)
	l := policy.Limits{
		MaxConnections:           r.integer("connections"),
		MaxMessagesPerConnection: r.integer("messages_per_connection"),
		MaxRecipientsPerMessage:  r.integer("recipients_per_message"),
		PerSecond:                r.num("per_second"),
		PerMinute:                r.num("per_minute"),
		PerHour:                  r.num("per_hour"),
		PerDay:                   r.num("per_day"),
		Burst:                    r.integer("burst"),
		SuspendDelay:             r.duration("suspend_delay"),
		RecoveryInterval:         r.duration("recovery_interval"),
		RecoveryStep:             r.num("recovery_step"),
	}
	// The defaults, as a policy writes them: policy.DefaultSuspendDelay
	// and policy.DefaultRecoveryInterval.
	for _, d := range []struct{ name, def string }{{"suspend_delay", "10m"}, {"recovery_interval", "30s"}} {
		if v := r.t.RawGetString(d.name); v != lua.LNil && r.err == nil {
			if got, _ := toDuration(v); got <= 0 {
				r.fail("%s = %v; want a duration above zero (%q by default)", d.name, v, d.def)
			}
		}
	}
	if r.t.RawGetString("recovery_step") != lua.LNil && l.RecoveryStep <= 1 {
		r.fail("recovery_step = %v; want a factor above 1 (%v by default: a slowed-down rate grows by a quarter at each step)", l.RecoveryStep, policy.DefaultRecoveryStep)
	}
	if r.t.RawGetString("critical_reserve") == lua.LNil {
		if l.PerHour > 0 || l.PerDay > 0 {
			l.CriticalReserve = policy.DefaultCriticalReserve
		}
	} else {
		l.CriticalReserve = r.num("critical_reserve")
		if l.CriticalReserve >= 1 {
			r.fail("critical_reserve = %v; want a share below 1 (0.1 keeps a tenth of each hour's and day's volume for critical mail)", l.CriticalReserve)
		}
	}
	return l, r.err
}

var verdictFields = []string{"action", "delay", "category", "scope", "rate_factor", "hard"}

// toVerdict reads on_response's table. Scope defaults to "recipient", or
// to "source" for a suspension.
func toVerdict(v lua.LValue, fn *lua.LFunction) (policy.Verdict, *ScriptError) {
	r, err := newResult(v, fn, hOnResponse)
	if err != nil {
		return policy.Verdict{}, err
	}
	r.known(verdictFields)
	vd := policy.Verdict{
		Action:     policy.Action(r.str("action")),
		Delay:      r.duration("delay"),
		Category:   event.Category(r.str("category")),
		Scope:      policy.Scope(r.str("scope")),
		RateFactor: r.num("rate_factor"),
		Hard:       r.boolean("hard"),
	}
	switch vd.Action {
	case policy.Deliver, policy.Retry, policy.Bounce, policy.Suspend:
	default:
		r.fail("action %q; want deliver, retry, bounce or suspend", vd.Action)
	}
	switch vd.Scope {
	case "":
		vd.Scope = policy.ScopeRecipient
		if vd.Action == policy.Suspend {
			vd.Scope = policy.ScopeSource
		}
	case policy.ScopeRecipient, policy.ScopeProvider, policy.ScopeSource:
	default:
		r.fail("scope %q; want recipient, provider or source", vd.Scope)
	}
	if vd.RateFactor > 1 {
		r.fail("rate_factor = %v; want a number between 0 and 1", vd.RateFactor)
	}
	return vd, r.err
}

var bounceFields = []string{"category", "hard"}

// toBounceVerdict reads on_bounce's table.
func toBounceVerdict(v lua.LValue, fn *lua.LFunction) (policy.BounceVerdict, *ScriptError) {
	r, err := newResult(v, fn, hOnBounce)
	if err != nil {
		return policy.BounceVerdict{}, err
	}
	r.known(bounceFields)
	bv := policy.BounceVerdict{Category: event.Category(r.str("category")), Hard: r.boolean("hard")}
	if bv.Category == "" && r.err == nil {
		r.fail("no category")
	}
	return bv, r.err
}
