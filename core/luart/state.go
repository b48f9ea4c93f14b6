package luart

import (
	"context"
	"errors"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/luadata"
)

// hookID names a hook; hookNames are their Lua names.
type hookID int

const (
	hClassify hookID = iota
	hRewrite
	hRoute
	hShape
	hOnResponse
	hOnBounce
	numHooks
)

var hookNames = [numHooks]string{"classify", "rewrite", "route", "shape", "on_response", "on_bounce"}

// Hooks returns the names of the hooks a policy script may define, in the
// order the core calls them for a message.
func Hooks() []string { return append([]string(nil), hookNames[:]...) }

// tenantHookAllowed says which hooks a tenant file may override. Shaping
// is per provider and source IP, and an asynchronous bounce arrives before
// anyone knows its tenant, so those two only have default scripts.
var tenantHookAllowed = [numHooks]bool{hClassify: true, hRewrite: true, hRoute: true, hOnResponse: true}

// hookSet holds one function per hook; nil means "not defined here".
type hookSet [numHooks]*lua.LFunction

// state is one prepared Lua state of a generation: the sandbox, every
// policy file run once, and the hook functions found. A state serves one
// call at a time; the generation's pool hands states to goroutines.
type state struct {
	L        *lua.LState
	gen      *generation
	defaults hookSet
	tenants  map[string]*hookSet

	// msg is the reused message object; attempt, rcpt and report are the
	// reused argument tables of on_response, route and on_bounce.
	msg     *lua.LUserData
	attempt *lua.LTable
	rcpt    *lua.LTable
	report  *lua.LTable

	// hook, tenant and msgID describe the call in progress, for core.log.
	hook   hookID
	tenant string
	msgID  string
	// quarantined is set when the call's key is quarantined: it runs
	// under Options.QuarantineTimeout.
	quarantined bool

	// broken is set when a call was interrupted (a budget, a Go panic)
	// or the state keeps more than Options.StateMemory: the state is
	// closed instead of going back to the pool.
	broken bool

	// ctx is the reused context of the state's calls. baseline is the
	// estimated size of the state once prepared; retained is the last
	// measurement between calls, and retainedMark the process's
	// cumulative allocation when it was taken.
	ctx          callCtx
	baseline     int64
	retained     int64
	retainedMark uint64
	// calls counts the calls since the last measurement between calls.
	calls int
}

// newState prepares a Lua state for g: it runs every script under the
// load budget and collects the hooks.
func newState(g *generation) (*state, error) {
	st := &state{gen: g, hook: -1, tenants: map[string]*hookSet{}}
	st.L = newSandbox(g.preload(st), g.engine.opts.CallMemory)
	L := st.L
	st.msg = L.NewUserData()
	L.SetMetatable(st.msg, newMessageMeta(L))
	st.attempt = L.CreateTable(0, 16)
	st.rcpt = L.CreateTable(0, 8)
	st.report = L.CreateTable(0, 12)

	ctx, cancel := context.WithTimeout(context.Background(), g.engine.opts.LoadTimeout)
	defer cancel()
	L.SetContext(ctx)
	var err error
	if g.providers == nil {
		err = g.loadData(st)
	}
	if err == nil {
		err = st.loadScripts()
	}
	L.RemoveContext()
	if err != nil {
		var se *ScriptError
		if ctx.Err() != nil && errors.As(err, &se) {
			c := *se
			c.Msg = fmt.Sprintf("stopped after %v (load time budget exceeded)", g.engine.opts.LoadTimeout)
			err = &c
		}
		L.Close()
		return nil, err
	}
	st.ctx.st = st
	st.baseline, _ = st.measure(false, unlimited)
	st.retained = st.baseline
	return st, nil
}

// loadScripts runs the default scripts, then the tenant scripts, each in an
// environment of its own whose unknown names resolve to the shared globals,
// and records which hooks each defines.
func (st *state) loadScripts() error {
	L := st.L
	envMeta := L.NewTable()
	envMeta.RawSetString("__index", L.G.Global)
	for _, src := range st.gen.scripts {
		env := L.NewTable()
		L.SetMetatable(env, envMeta)
		if err := runFile(L, src, env); err != nil {
			return err
		}
		found := false
		for h := range numHooks {
			fn, ok := env.RawGetString(hookNames[h]).(*lua.LFunction)
			if !ok {
				continue
			}
			if prev := st.defaults[h]; prev != nil {
				return &ScriptError{File: src.rel, Line: fn.Proto.LineDefined,
					Msg: fmt.Sprintf("hook %s is already defined in %s", hookNames[h], funcPos(prev))}
			}
			st.defaults[h] = fn
			found = true
		}
		if !found {
			return &ScriptError{File: src.rel, Msg: "defines none of the hooks " + strings.Join(hookNames[:], ", ")}
		}
	}
	for _, src := range st.gen.tenantScripts {
		defaults := L.NewTable()
		for h, fn := range st.defaults {
			if fn != nil {
				defaults.RawSetString(hookNames[h], fn)
			}
		}
		env := L.NewTable()
		L.SetMetatable(env, envMeta)
		env.RawSetString("defaults", defaults)
		if err := runFile(L, src, env); err != nil {
			return err
		}
		set := &hookSet{}
		found := false
		for h := range numHooks {
			fn, ok := env.RawGetString(hookNames[h]).(*lua.LFunction)
			if !ok {
				continue
			}
			if !tenantHookAllowed[h] {
				return &ScriptError{File: src.rel, Line: fn.Proto.LineDefined,
					Msg: fmt.Sprintf("hook %s cannot be overridden per tenant (it only has a default script)", hookNames[h])}
			}
			set[h] = fn
			found = true
		}
		if !found {
			return &ScriptError{File: src.rel, Msg: "defines none of the hooks classify, rewrite, route, on_response"}
		}
		st.tenants[src.name] = set
	}
	return nil
}

// runFile runs a compiled file once with env as its globals.
func runFile(L *lua.LState, src *source, env *lua.LTable) error {
	fn := L.NewFunctionFromProto(src.proto)
	fn.Env = env
	L.Push(fn)
	if err := L.PCall(0, 0, nil); err != nil {
		return luadata.FromLua(err)
	}
	return nil
}

// funcPos is "file:line" of a Lua function's definition.
func funcPos(fn *lua.LFunction) string {
	if fn.Proto == nil {
		return "(Go function)"
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}

// lookupHook returns the function to run for h: the tenant's override if
// it has one, else the default; and the tenant whose override it is.
func (st *state) lookupHook(h hookID, tenant string) (*lua.LFunction, string) {
	if tenant != "" {
		if set := st.tenants[tenant]; set != nil && set[h] != nil {
			return set[h], tenant
		}
	}
	return st.defaults[h], ""
}

// call runs fn with args under the time and memory budgets and returns
// its first result. The result is only valid until the state goes back to
// the pool.
func (st *state) call(ctx context.Context, fn *lua.LFunction, args ...lua.LValue) (lua.LValue, error) {
	L := st.L
	opts := &st.gen.engine.opts
	c := &st.ctx
	timeout := opts.CallTimeout
	if st.quarantined {
		timeout = opts.QuarantineTimeout
	}
	c.begin(ctx, timeout, st.retained+opts.CallMemory, uint64(opts.CallMemory/4))
	L.SetContext(c)
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), 1, nil)
	L.RemoveContext()
	cause, allocs := c.end()
	if cause == notStopped {
		st.checkRetained(allocs)
	}
	if err != nil {
		var api *lua.ApiError
		if !errors.As(err, &api) || api.Type == lua.ApiErrorPanic {
			st.broken = true
		}
		if cause != notStopped {
			st.broken = true
			if cause == stopCanceled {
				return nil, fmt.Errorf("luart: call abandoned: %w", context.Cause(ctx))
			}
			se := luadata.FromLua(err)
			if cause == stopMemory {
				se.Msg = fmt.Sprintf("stopped holding more than %d bytes (memory budget exceeded)", opts.CallMemory)
			} else {
				se.Msg = fmt.Sprintf("stopped after %v (time budget exceeded)", timeout)
			}
			return nil, &budgetError{ScriptError: se, memory: cause == stopMemory}
		}
		se := luadata.FromLua(err)
		if api != nil && api.Type == lua.ApiErrorPanic {
			se.Msg = "Go function panicked: " + se.Msg
		}
		if se.File == "" && fn.Proto != nil {
			// No Lua position (a Go function failed): point at the hook.
			se.File, se.Line = fn.Proto.SourceName, fn.Proto.LineDefined
		}
		return nil, se
	}
	ret := L.Get(-1)
	L.Pop(1)
	return ret, nil
}

// retainedEvery is how many calls may pass between two measurements of
// what a state keeps, whatever the process allocated: the allocation the
// watchdog reads can be a tick old.
const retainedEvery = 256

// checkRetained measures what the state keeps between calls when the
// process allocated enough since the last measurement for the state to
// have grown past a quarter of its budget (its growth cannot exceed what
// the process allocated), when the call was measured during its run, and
// every retainedEvery calls. A state over baseline+Options.StateMemory is
// discarded: the next call gets a fresh one.
func (st *state) checkRetained(allocs uint64) {
	e := st.gen.engine
	st.calls++
	if !st.ctx.measured && st.calls < retainedEvery && allocs-st.retainedMark < uint64(e.opts.StateMemory/4) {
		return
	}
	st.calls = 0
	limit := st.baseline + e.opts.StateMemory
	size, ok := st.measure(false, limit)
	st.retained, st.retainedMark = size, allocs
	if ok {
		return
	}
	st.broken = true
	e.stateResets.Add(1)
	hook := "(none)"
	if st.hook >= 0 {
		hook = hookNames[st.hook]
	}
	e.log.Warn("luart: a Lua state keeps too much between calls; it is replaced by a fresh one",
		"hook", hook, "tenant", st.tenant, "kept_bytes_over", size-st.baseline, "limit_bytes", e.opts.StateMemory)
}

// budgetError marks a *ScriptError caused by a budget: time, or memory
// when memory is set.
type budgetError struct {
	*ScriptError
	memory bool
}

// resultError is an error about what a hook returned, placed at the hook's
// definition.
func resultError(fn *lua.LFunction, h hookID, format string, args ...any) *ScriptError {
	se := &ScriptError{Msg: hookNames[h] + " returned " + fmt.Sprintf(format, args...)}
	if fn.Proto != nil {
		se.File, se.Line = fn.Proto.SourceName, fn.Proto.LineDefined
	}
	return se
}
