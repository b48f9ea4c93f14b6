package luart

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/bounce"
	"corriere/core/luadata"
	"corriere/core/policy"
	"corriere/core/tenant"
)

// generation is every policy file compiled and loaded together. It is
// immutable once current, apart from its caches and its pool of states.
type generation struct {
	engine   *Engine
	number   uint64
	loadedAt time.Time

	sources       []*source
	scripts       []*source          // default hook scripts
	tenantScripts []*source          // per-tenant overrides
	rules         map[string]*source // rules/*.lua by base name
	tenantFiles   []*source          // rules/tenants/*.lua

	providers *providerSet
	tenants   map[string]*tenant.Tenant
	warmups   map[string]policy.Warmup
	pools     []string // the pool names of rules/pools.lua, sorted
	bounces   bounceClassifier

	// hookPos is where each default hook is defined ("" when it falls back
	// to the built-in Go policy); overrides lists each tenant's hooks and
	// overridePos where each is defined.
	hookPos     [numHooks]string
	overrides   map[string][]string
	overridePos map[string]*[numHooks]string

	// pool holds the idle states; slots has one token per state in
	// existence, so at most Options.PoolSize states exist and as many hook
	// calls run at once.
	pool    chan *state
	slots   chan struct{}
	retired atomic.Bool

	shapeMu sync.RWMutex
	shapes  map[shapeKey]policy.Limits
}

type shapeKey struct{ provider, source string }

// build compiles and loads everything under the policy directories as
// generation number, smoke-calls every hook, and returns it ready to
// become current; any failure is a *ScriptError with the file and line.
func build(e *Engine, number uint64) (*generation, error) {
	srcs, err := listSources(e.opts.ScriptsDir, e.opts.RulesDir)
	if err != nil {
		return nil, err
	}
	g := &generation{
		engine:      e,
		number:      number,
		loadedAt:    e.now(),
		sources:     srcs,
		rules:       map[string]*source{},
		tenants:     map[string]*tenant.Tenant{},
		bounces:     statusClassifier{},
		overrides:   map[string][]string{},
		overridePos: map[string]*[numHooks]string{},
		pool:        make(chan *state, e.opts.PoolSize),
		slots:       make(chan struct{}, e.opts.PoolSize),
		shapes:      map[shapeKey]policy.Limits{},
	}
	for _, src := range srcs {
		switch src.kind {
		case hookScript:
			g.scripts = append(g.scripts, src)
		case tenantScript:
			g.tenantScripts = append(g.tenantScripts, src)
		case rulesData:
			if src.name == "tenants" {
				return nil, &ScriptError{File: src.rel, Msg: "the name is taken by the rules/tenants/ directory (module rules.tenants)"}
			}
			g.rules[src.name] = src
		case tenantData:
			g.tenantFiles = append(g.tenantFiles, src)
		}
	}
	g.slots <- struct{}{}
	st, err := newState(g)
	if err != nil {
		return nil, err
	}
	for h, fn := range st.defaults {
		if fn != nil {
			g.hookPos[h] = funcPos(fn)
		}
	}
	for name, set := range st.tenants {
		pos := &[numHooks]string{}
		for h, fn := range set {
			if fn != nil {
				g.overrides[name] = append(g.overrides[name], hookNames[h])
				pos[h] = funcPos(fn)
			}
		}
		g.overridePos[name] = pos
	}
	g.pool <- st
	if err := g.smoke(); err != nil {
		g.retire()
		return nil, err
	}
	return g, nil
}

// preload lists the modules require can load in state st.
func (g *generation) preload(st *state) map[string]loader {
	p := map[string]loader{
		"core":          coreModule(st),
		"bounces":       bouncesModule(st),
		"rules.tenants": g.tenantsModule,
	}
	for name, src := range g.rules {
		p["rules."+name] = dataLoader(src)
	}
	for _, m := range g.engine.opts.Modules {
		p[m.Name()] = moduleLoader(m)
	}
	return p
}

// tenantsModule loads "rules.tenants": every tenant table by name, without
// password hashes, which scripts have no use for.
func (g *generation) tenantsModule(L *lua.LState) (lua.LValue, error) {
	all := L.CreateTable(0, len(g.tenantFiles))
	for _, src := range g.tenantFiles {
		t, err := runData(L, src)
		if err != nil {
			return nil, err
		}
		t.RawSetString("password_hash", lua.LNil)
		if t.RawGetString("name") == lua.LNil {
			t.RawSetString("name", lua.LString(src.name))
		}
		all.RawSetString(src.name, t)
	}
	return all, nil
}

// loadData reads the rules files the Go side needs, in the first state of
// the generation, before any script runs.
func (g *generation) loadData(st *state) error {
	L := st.L
	require := func(name string) (*lua.LTable, error) {
		L.Push(L.G.Global.RawGetString("require"))
		L.Push(lua.LString(name))
		if err := L.PCall(1, 1, nil); err != nil {
			return nil, luadata.FromLua(err)
		}
		t, _ := L.Get(-1).(*lua.LTable)
		L.Pop(1)
		return t, nil
	}
	var providers *lua.LTable
	providersFile := ""
	if src, ok := g.rules["providers"]; ok {
		t, err := require("rules.providers")
		if err != nil {
			return err
		}
		providers, providersFile = t, src.rel
	}
	ps, err := newProviderSet(providersFile, providers)
	if err != nil {
		return err
	}
	g.providers = ps
	if src, ok := g.rules["pools"]; ok {
		t, err := require("rules.pools")
		if err != nil {
			return err
		}
		if g.warmups, g.pools, err = checkPools(src.rel, t); err != nil {
			return err
		}
	}
	if src, ok := g.rules["tls"]; ok {
		t, err := require("rules.tls")
		if err != nil {
			return err
		}
		if err := checkTLSRules(src.rel, t); err != nil {
			return err
		}
	}
	if src, ok := g.rules["bounces"]; ok {
		t, err := require("rules.bounces")
		if err != nil {
			return err
		}
		if g.bounces = g.engine.cachedBounces(src.sum); g.bounces == nil {
			rules, err := bounce.RulesFromLua(t)
			if err != nil {
				return &ScriptError{File: src.rel, Msg: err.Error()}
			}
			g.engine.cacheBounces(src.sum, rules)
			g.bounces = rules
		}
	}
	for _, src := range g.tenantFiles {
		t, err := runData(L, src)
		if err != nil {
			return err
		}
		tn, err := toTenant(src, t)
		if err != nil {
			return err
		}
		g.tenants[tn.Name] = tn
	}
	return nil
}

// get takes an idle state, prepares a new one if fewer than PoolSize
// exist, or waits for one to come back. Waiting is outside the time
// budget: the budget measures the hook, not the queue in front of it.
func (g *generation) get(ctx context.Context) (*state, error) {
	select {
	case st := <-g.pool:
		return st, nil
	default:
	}
	select {
	case st := <-g.pool:
		return st, nil
	case g.slots <- struct{}{}:
		st, err := newState(g)
		if err != nil {
			<-g.slots
			return nil, err
		}
		return st, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("luart: waiting for a Lua state: %w", ctx.Err())
	}
}

// put returns a state to the pool. States that were interrupted and states
// of a generation that is no longer current are closed instead, making
// room for a fresh one.
func (g *generation) put(st *state) {
	st.hook, st.tenant, st.msgID, st.quarantined = -1, "", "", false
	if st.broken || g.retired.Load() {
		st.L.Close()
		<-g.slots
		return
	}
	g.pool <- st
}

// retire marks g as replaced and closes its idle states; states in use are
// closed as they are returned.
func (g *generation) retire() {
	g.retired.Store(true)
	for {
		select {
		case st := <-g.pool:
			st.L.Close()
			<-g.slots
		default:
			return
		}
	}
}

// provider names the provider of an MX host.
func (g *generation) provider(mxHost string) string { return g.providers.lookup(mxHost) }

// fileList returns the paths of every file of the generation.
func (g *generation) fileList() []string {
	out := make([]string, len(g.sources))
	for i, s := range g.sources {
		out[i] = s.rel
	}
	return out
}

func (g *generation) String() string {
	return fmt.Sprintf("generation %d (%d files, loaded %s)", g.number, len(g.sources), g.loadedAt.Format(time.RFC3339))
}

// smokeContext is the context of smoke calls: only the time budget applies.
var smokeContext = context.Background()
