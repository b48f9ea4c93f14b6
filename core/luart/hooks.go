package luart

import (
	"context"
	"errors"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/message"
	"corriere/core/policy"
)

// The generation-level hook runners: take a state, find the hook (tenant
// override, default script, or the built-in Go policy when no script
// defines it), call it under the budget, convert the result, and return
// the state. Engine wraps them with counting and logging.

// hookError wraps a failure of hook h for the caller.
func hookError(h hookID, tenant string, err error) error {
	if err == nil {
		return nil
	}
	var be *budgetError
	if errors.As(err, &be) {
		return &HookError{Hook: hookNames[h], Tenant: tenant, Err: be.ScriptError, Timeout: !be.memory, Memory: be.memory}
	}
	var se *ScriptError
	if errors.As(err, &se) {
		return &HookError{Hook: hookNames[h], Tenant: tenant, Err: se}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // the caller gave up: not the script's failure
	}
	return &HookError{Hook: hookNames[h], Tenant: tenant, Err: err}
}

// begin takes a state and finds the function for h; fn is nil when the
// built-in policy decides. A context marked by withQuarantine selects the
// quarantine's time budget.
func (g *generation) begin(ctx context.Context, h hookID, tenant, msgID string) (st *state, fn *lua.LFunction, owner string, err error) {
	st, err = g.get(ctx)
	if err != nil {
		return nil, nil, "", hookError(h, "", err)
	}
	fn, owner = st.lookupHook(h, tenant)
	if fn == nil {
		g.put(st)
		return nil, nil, "", nil
	}
	st.hook, st.tenant, st.msgID = h, owner, msgID
	st.quarantined = ctx.Value(quarantinedKey{}) != nil
	return st, fn, owner, nil
}

func (g *generation) classify(ctx context.Context, m *message.Message) (policy.Classification, error) {
	st, fn, owner, err := g.begin(ctx, hClassify, m.Tenant, m.ID)
	if err != nil || fn == nil {
		if err != nil {
			return policy.Classification{}, err
		}
		return g.engine.fallback.Classify(ctx, m)
	}
	defer g.put(st)
	st.msg.Value = m
	ret, err := st.call(ctx, fn, st.msg)
	st.msg.Value = nil
	if err != nil {
		return policy.Classification{}, hookError(hClassify, owner, err)
	}
	c, serr := toClassification(ret, fn, m)
	if serr != nil {
		return policy.Classification{}, hookError(hClassify, owner, serr)
	}
	return c, nil
}

func (g *generation) rewrite(ctx context.Context, m *message.Message) error {
	st, fn, owner, err := g.begin(ctx, hRewrite, m.Tenant, m.ID)
	if err != nil || fn == nil {
		if err != nil {
			return err
		}
		return g.engine.fallback.Rewrite(ctx, m)
	}
	defer g.put(st)
	st.msg.Value = m
	_, err = st.call(ctx, fn, st.msg)
	st.msg.Value = nil
	return hookError(hRewrite, owner, err)
}

func (g *generation) route(ctx context.Context, d *policy.Delivery) (policy.Route, error) {
	m := d.Message
	st, fn, owner, err := g.begin(ctx, hRoute, m.Tenant, m.ID)
	if err != nil || fn == nil {
		if err != nil {
			return policy.Route{}, err
		}
		return g.engine.fallback.Route(ctx, d)
	}
	defer g.put(st)
	t := st.rcpt
	t.RawSetString("address", lua.LString(d.Recipient))
	t.RawSetString("domain", lua.LString(d.Domain))
	t.RawSetString("provider", lua.LString(d.Provider))
	t.RawSetString("mx", lua.LString(d.MXHost))
	t.RawSetString("attempts", lua.LNumber(d.Attempts))
	t.RawSetString("previous_source", lua.LString(d.PreviousSource))
	var pool lua.LValue = lua.LNil // the table is reused: clear the last call's
	if d.Pool != "" {
		pool = lua.LString(d.Pool)
	}
	t.RawSetString("pool", pool)
	var capped lua.LValue = lua.LNil
	if len(d.Capped) > 0 {
		ct := st.L.CreateTable(0, len(d.Capped))
		for _, ip := range d.Capped {
			ct.RawSetString(ip, lua.LTrue)
		}
		capped = ct
	}
	t.RawSetString("capped", capped)
	st.msg.Value = m
	ret, err := st.call(ctx, fn, st.msg, t)
	st.msg.Value = nil
	if err != nil {
		return policy.Route{}, hookError(hRoute, owner, err)
	}
	rt, serr := toRoute(ret, fn, g.engine.opts.Sources)
	if serr != nil {
		return policy.Route{}, hookError(hRoute, owner, serr)
	}
	return rt, nil
}

// maxShapeCache bounds the per-generation cache of limits. Unknown
// providers are named after their MX domains, so the pairs are many but
// finite; past the bound the hook simply runs again.
const maxShapeCache = 1 << 16

func (g *generation) shape(ctx context.Context, provider, source string) (policy.Limits, error) {
	key := shapeKey{provider, source}
	g.shapeMu.RLock()
	l, ok := g.shapes[key]
	g.shapeMu.RUnlock()
	if ok {
		return l, nil
	}
	st, fn, _, err := g.begin(ctx, hShape, "", "")
	if err != nil || fn == nil {
		if err != nil {
			return policy.Limits{}, err
		}
		return g.engine.fallback.Shape(ctx, provider, source)
	}
	defer g.put(st)
	ret, err := st.call(ctx, fn, lua.LString(provider), lua.LString(source))
	if err != nil {
		return policy.Limits{}, hookError(hShape, "", err)
	}
	l, serr := toLimits(ret, fn)
	if serr != nil {
		return policy.Limits{}, hookError(hShape, "", serr)
	}
	g.shapeMu.Lock()
	if len(g.shapes) < maxShapeCache {
		g.shapes[key] = l
	}
	g.shapeMu.Unlock()
	return l, nil
}

func (g *generation) onResponse(ctx context.Context, a *policy.Attempt) (policy.Verdict, error) {
	st, fn, owner, err := g.begin(ctx, hOnResponse, a.Tenant, "")
	if err != nil || fn == nil {
		if err != nil {
			return policy.Verdict{}, err
		}
		return g.engine.fallback.OnResponse(ctx, a)
	}
	defer g.put(st)
	t := st.attempt
	t.RawSetString("stage", lua.LString(a.Stage))
	code, status, text := 0, "", ""
	if a.Reply != nil {
		code, status, text = a.Reply.Code, a.Reply.Status.String(), a.Reply.Text
	}
	t.RawSetString("code", lua.LNumber(code))
	t.RawSetString("status", lua.LString(status))
	t.RawSetString("text", lua.LString(text))
	t.RawSetString("network", lua.LBool(a.Network))
	t.RawSetString("recipient", lua.LString(a.Recipient))
	t.RawSetString("tenant", lua.LString(a.Tenant))
	t.RawSetString("class", lua.LString(a.Class))
	t.RawSetString("provider", lua.LString(a.Provider))
	t.RawSetString("mx", lua.LString(a.MXHost))
	t.RawSetString("source", lua.LString(a.Source))
	t.RawSetString("attempts", lua.LNumber(a.Attempts))
	t.RawSetString("age", lua.LNumber(a.Age.Seconds()))
	ret, err := st.call(ctx, fn, t)
	if err != nil {
		return policy.Verdict{}, hookError(hOnResponse, owner, err)
	}
	v, serr := toVerdict(ret, fn)
	if serr != nil {
		return policy.Verdict{}, hookError(hOnResponse, owner, serr)
	}
	return v, nil
}

func (g *generation) onBounce(ctx context.Context, r *policy.BounceReport) (policy.BounceVerdict, error) {
	st, fn, _, err := g.begin(ctx, hOnBounce, "", "")
	if err != nil || fn == nil {
		if err != nil {
			return policy.BounceVerdict{}, err
		}
		return g.bounces.Classify(r), nil
	}
	defer g.put(st)
	setReportTable(st.report, r)
	ret, err := st.call(ctx, fn, st.report)
	if err != nil {
		return policy.BounceVerdict{}, hookError(hOnBounce, "", err)
	}
	v, serr := toBounceVerdict(ret, fn)
	if serr != nil {
		return policy.BounceVerdict{}, hookError(hOnBounce, "", serr)
	}
	return v, nil
}
