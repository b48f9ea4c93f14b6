package luart

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/bounce"
	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/luadata"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/tenant"
)

// Module is a Lua module a plugin adds to the sandbox, loaded by scripts
// with require(Name()).
type Module interface {
	// Name is the name scripts require, for example "dkim". It must not
	// be "core", "bounces" or start with "rules.".
	Name() string
	// Loader pushes the module's value (usually a table of functions) on
	// L's stack and returns 1. It runs once per Lua state, on the first
	// require, and must not keep L beyond the state's life.
	Loader(L *lua.LState) int
}

// Options configure an Engine.
type Options struct {
	// ScriptsDir holds the hook scripts (scripts/*.lua) and the per-tenant
	// overrides (scripts/tenants/<tenant>.lua). The default value is
	// "./scripts".
	ScriptsDir string
	// RulesDir holds the policy data (rules/*.lua, rules/tenants/*.lua).
	// The default value is "./rules".
	RulesDir string
	// CallTimeout is the time budget of one hook call; a hook still
	// running after it is stopped. The default value is 100ms.
	CallTimeout time.Duration
	// CallMemory is the memory budget of one hook call: the estimated
	// size of what the call holds beyond what its Lua state kept before
	// the call (strings, tables and closures reachable from its stack,
	// globals and upvalues). A call over it is stopped at its next
	// instruction, and no single string operation may produce a result
	// longer than it. The default value is 16 MiB.
	CallMemory int64
	// StateMemory bounds what a Lua state keeps between calls, in globals
	// and upvalues, beyond what loading the policy built. A state over it
	// is discarded (logged, counted in Status.StateResets) and the next
	// call gets a fresh one. The default value is 16 MiB.
	StateMemory int64
	// QuarantineStrikes is how many budget failures (time or memory)
	// within QuarantineWindow put a key (hook, tenant and, at ingest, the
	// client) in quarantine for QuarantineTime. The default value is 3.
	QuarantineStrikes int
	// QuarantineWindow is the window of QuarantineStrikes. The default
	// value is 1m.
	QuarantineWindow time.Duration
	// QuarantineTime is how long a quarantine lasts after the last
	// failure. The default value is 1m.
	QuarantineTime time.Duration
	// QuarantineTimeout is the time budget of a call of a quarantined
	// key. The default value is CallTimeout/50, at least 2ms.
	QuarantineTimeout time.Duration
	// LoadTimeout is the time budget for preparing one Lua state (running
	// every policy file once). The default value is luadata.DefaultTimeout
	// (2s), the deadline of every Lua data file.
	LoadTimeout time.Duration
	// PoolSize is how many Lua states a generation may prepare, and so how
	// many hook calls run at once; further calls wait for a free state,
	// outside their time budget. Hooks are CPU-bound, so more would only
	// time-slice them against each other (and against their wall-clock
	// budgets). The default value is 2*GOMAXPROCS.
	PoolSize int
	// Sources are the node's configured egress IPs, which scripts read with
	// core.sources() and which an egress pool without IPs of its own uses.
	Sources []policy.Source
	// Counters are the live delivery counters scripts read with
	// core.counts(); nil reads as zero everywhere.
	Counters policy.Counters
	// Reputation is the persistent reputation scripts read with
	// core.reputation(); nil reads as zero everywhere.
	Reputation policy.Reputation
	// Modules are extra Lua modules registered by plugins.
	Modules []Module
	// Preparers are the plugins whose files in RulesDir load with every
	// generation, and refuse it when broken (see extension.Preparer).
	Preparers []extension.Preparer
	// Logger receives load, reload and hook-failure logs. The default value
	// discards them.
	Logger *slog.Logger
	// Events, if set, receives an event.PolicyLoad on every load (Category
	// event.PolicyLoaded) and every refused reload (event.PolicyRefused),
	// with Reason saying which generation or which error. They are for the
	// log; code that must act on a reload registers with OnReload.
	Events *event.Bus
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
}

// EnsureDefaults fills in the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.ScriptsDir == "" {
		o.ScriptsDir = "./scripts"
	}
	if o.RulesDir == "" {
		o.RulesDir = "./rules"
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 100 * time.Millisecond
	}
	if o.CallMemory <= 0 {
		o.CallMemory = 16 << 20
	}
	if o.StateMemory <= 0 {
		o.StateMemory = 16 << 20
	}
	if o.QuarantineStrikes <= 0 {
		o.QuarantineStrikes = 3
	}
	if o.QuarantineWindow <= 0 {
		o.QuarantineWindow = time.Minute
	}
	if o.QuarantineTime <= 0 {
		o.QuarantineTime = time.Minute
	}
	if o.QuarantineTimeout <= 0 {
		o.QuarantineTimeout = max(o.CallTimeout/50, 2*time.Millisecond)
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = luadata.DefaultTimeout
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports options that cannot work: module names that clash with
// the built-in modules or with each other.
func (o *Options) Validate() error {
	seen := map[string]bool{}
	for _, m := range o.Modules {
		n := m.Name()
		switch {
		case n == "" || n == "core" || n == "bounces" || strings.HasPrefix(n, "rules."):
			return fmt.Errorf("luart: module name %q is reserved", n)
		case seen[n]:
			return fmt.Errorf("luart: module %q registered twice", n)
		}
		seen[n] = true
	}
	return nil
}

// Engine is the Lua policy: it implements policy.Policy and
// tenant.Directory over the current generation of the policy files, and is
// safe for concurrent use.
type Engine struct {
	opts     Options
	log      *slog.Logger
	fallback policy.Default

	cur      atomic.Pointer[generation]
	reloadMu sync.Mutex
	// onReload are the functions registered with OnReload; guarded by
	// reloadMu.
	onReload []func(generation uint64)

	stats        [numHooks]hookStats
	hookObserver atomic.Pointer[HookObserver]
	reloadErrors atomic.Uint64
	stateResets  atomic.Uint64
	quarantine   quarantine

	statusMu  sync.Mutex
	lastErr   error
	lastErrAt time.Time

	// bouncesSum and bounces are the compiled rules/bounces.lua of the
	// last generation: its matcher is costly to build, and most reloads
	// do not touch it.
	bouncesMu  sync.Mutex
	bouncesSum [sha256.Size]byte
	bounces    *bounce.Rules
}

// cachedBounces returns the compiled bounce rules of a file with content
// sum, if the last build compiled the same content.
func (e *Engine) cachedBounces(sum [sha256.Size]byte) bounceClassifier {
	e.bouncesMu.Lock()
	defer e.bouncesMu.Unlock()
	if e.bounces == nil || e.bouncesSum != sum {
		return nil
	}
	return e.bounces
}

func (e *Engine) cacheBounces(sum [sha256.Size]byte, r *bounce.Rules) {
	e.bouncesMu.Lock()
	defer e.bouncesMu.Unlock()
	e.bouncesSum, e.bounces = sum, r
}

// hookStats counts the calls of one hook; lastLog and suppressed limit
// failure logs to one line per second per hook.
type hookStats struct {
	calls, errors, timeouts, memory atomic.Uint64
	lastLog                         atomic.Int64
	suppressed                      atomic.Uint64
}

var (
	_ policy.Policy       = (*Engine)(nil)
	_ policy.WarmupPolicy = (*Engine)(nil)
	_ tenant.Directory    = (*Engine)(nil)
)

// New loads the policy directories as generation 1. It fails, with the
// file and line of the first problem, if any file does not compile or load
// or a smoke call of a hook fails: a node must not start on a broken
// policy.
func New(opts Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		opts:     opts,
		log:      opts.Logger,
		fallback: policy.Default{Sources: opts.Sources},
	}
	g, commit, err := e.buildPrepared(1)
	if err != nil {
		e.emit(event.PolicyRefused, fmt.Sprintf("policy refused: %v", err))
		return nil, fmt.Errorf("luart: load policy: %w", err)
	}
	e.cur.Store(g)
	commit()
	e.log.Info("luart: policy loaded", "generation", g.number, "files", len(g.sources),
		"scripts", opts.ScriptsDir, "rules", opts.RulesDir)
	e.emit(event.PolicyLoaded, fmt.Sprintf("policy generation %d loaded (%d files)", g.number, len(g.sources)))
	return e, nil
}

// Check compiles and loads the two directories, smoke-calls every hook and
// prepares the plugins' files, exactly as a reload would, and returns the
// first problem as file:line.
func Check(scriptsDir, rulesDir string, preparers ...extension.Preparer) error {
	_, err := New(Options{ScriptsDir: scriptsDir, RulesDir: rulesDir, Preparers: preparers})
	return err
}

// Reload builds a new generation from the directories. It becomes current
// only if everything loads and every smoke call succeeds; otherwise the
// current generation stays, and the error is logged, counted and kept for
// Status. Reloads are serialised.
func (e *Engine) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	old := e.cur.Load()
	g, commit, err := e.buildPrepared(old.number + 1)
	if err != nil {
		e.reloadErrors.Add(1)
		e.statusMu.Lock()
		e.lastErr, e.lastErrAt = err, e.now()
		e.statusMu.Unlock()
		e.log.Error("luart: policy reload refused; the current generation stays",
			"generation", old.number, "error", err.Error())
		e.emit(event.PolicyRefused, fmt.Sprintf("policy reload refused, generation %d stays: %v", old.number, err))
		return fmt.Errorf("luart: reload: %w", err)
	}
	e.cur.Store(g)
	commit()
	old.retire()
	e.log.Info("luart: policy reloaded", "generation", g.number, "files", len(g.sources))
	e.emit(event.PolicyLoaded, fmt.Sprintf("policy generation %d loaded (%d files)", g.number, len(g.sources)))
	for _, f := range e.onReload {
		f(g.number)
	}
	return nil
}

// OnReload registers f to be called after every successful Reload, with
// the number of the generation that became current. The first generation,
// loaded by New, is not notified. Calls come one at a time and in
// generation order, from the goroutine that reloaded, before Reload
// returns: f must return quickly (slow work goes to a goroutine of its
// own) and must not call Reload or OnReload.
func (e *Engine) OnReload(f func(generation uint64)) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	e.onReload = append(e.onReload, f)
}

func (e *Engine) emit(category event.Category, reason string) {
	e.opts.Events.Emit(&event.Event{Type: event.PolicyLoad, Category: category, Reason: reason})
}

func (e *Engine) now() time.Time { return e.opts.Now() }

// observe counts one call of the hook of key k, charges a budget failure
// to k (see quarantine.go), and logs a failure, at most one line per
// second per hook (the rest are counted in the next line). A quarantined
// call that failed waits in the tarpit before it returns.
func (e *Engine) observe(ctx context.Context, k quarantineKey, quarantined bool, start time.Time, msgID string, err error) {
	e.observeDuration(k.hook, start)
	s := &e.stats[k.hook]
	s.calls.Add(1)
	if err == nil {
		return
	}
	var he *HookError
	if !errors.As(err, &he) {
		return
	}
	he.Quarantined = quarantined
	switch {
	case he.Timeout:
		s.timeouts.Add(1)
	case he.Memory:
		s.memory.Add(1)
	default:
		s.errors.Add(1)
	}
	if he.Timeout || he.Memory {
		e.strike(k)
		if quarantined {
			e.tarpit(ctx, start)
		}
	}
	now := e.now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		s.suppressed.Add(1)
		return
	}
	attrs := []any{"hook", he.Hook, "timeout", he.Timeout, "memory", he.Memory, "error", he.Err.Error()}
	var se *ScriptError
	if errors.As(he.Err, &se) && se.File != "" {
		attrs = append(attrs, "pos", se.Pos())
	}
	if he.Tenant != "" {
		attrs = append(attrs, "tenant", he.Tenant)
	}
	if quarantined {
		attrs = append(attrs, "quarantined", true)
	}
	if msgID != "" {
		attrs = append(attrs, "msg_id", msgID)
	}
	if n := s.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, "similar_failures_not_logged", n)
	}
	e.log.Error("luart: hook failed; the safe outcome applies", attrs...)
}

// enter looks up whether k is quarantined and returns when the call
// starts (for the tarpit and the hook observer).
func (e *Engine) enter(k quarantineKey) (bool, time.Time) {
	return e.quarantined(k), time.Now()
}

// Classify runs the classify hook of the message's tenant (or the default).
func (e *Engine) Classify(ctx context.Context, m *message.Message) (policy.Classification, error) {
	k := ingestKey(hClassify, m)
	q, start := e.enter(k)
	c, err := e.cur.Load().classify(withQuarantine(ctx, q), m)
	e.observe(ctx, k, q, start, m.ID, err)
	return c, err
}

// Rewrite runs the rewrite hook, which edits the message in place.
func (e *Engine) Rewrite(ctx context.Context, m *message.Message) error {
	k := ingestKey(hRewrite, m)
	q, start := e.enter(k)
	err := e.cur.Load().rewrite(withQuarantine(ctx, q), m)
	e.observe(ctx, k, q, start, m.ID, err)
	return err
}

// Provider names the provider of an MX host from the patterns of
// rules/providers.lua, without calling Lua.
func (e *Engine) Provider(mxHost string) string {
	return e.cur.Load().provider(mxHost)
}

// Route runs the route hook for one recipient.
func (e *Engine) Route(ctx context.Context, d *policy.Delivery) (policy.Route, error) {
	k := quarantineKey{hook: hRoute, tenant: d.Message.Tenant}
	q, start := e.enter(k)
	r, err := e.cur.Load().route(withQuarantine(ctx, q), d)
	e.observe(ctx, k, q, start, d.Message.ID, err)
	return r, err
}

// Shape returns the limits from the shape hook, cached per generation,
// provider and source: the hook runs once per pair and generation.
func (e *Engine) Shape(ctx context.Context, provider, source string) (policy.Limits, error) {
	k := quarantineKey{hook: hShape}
	q, start := e.enter(k)
	l, err := e.cur.Load().shape(withQuarantine(ctx, q), provider, source)
	e.observe(ctx, k, q, start, "", err)
	return l, err
}

// OnResponse runs the on_response hook for one reply.
func (e *Engine) OnResponse(ctx context.Context, a *policy.Attempt) (policy.Verdict, error) {
	k := quarantineKey{hook: hOnResponse, tenant: a.Tenant}
	q, start := e.enter(k)
	v, err := e.cur.Load().onResponse(withQuarantine(ctx, q), a)
	e.observe(ctx, k, q, start, "", err)
	return v, err
}

// OnBounce runs the on_bounce hook for one asynchronous bounce.
func (e *Engine) OnBounce(ctx context.Context, r *policy.BounceReport) (policy.BounceVerdict, error) {
	k := quarantineKey{hook: hOnBounce}
	q, start := e.enter(k)
	v, err := e.cur.Load().onBounce(withQuarantine(ctx, q), r)
	e.observe(ctx, k, q, start, "", err)
	return v, err
}

// Lookup returns the tenant defined by rules/tenants/<name>.lua in the
// current generation.
func (e *Engine) Lookup(name string) (*tenant.Tenant, bool) {
	t, ok := e.cur.Load().tenants[name]
	return t, ok
}

// Status is a snapshot of the engine for `corriere rules status` and the
// admin API.
type Status struct {
	// Generation is the number of the current generation, from 1.
	Generation uint64 `json:"generation"`
	// LoadedAt is when the current generation was built.
	LoadedAt time.Time `json:"loaded_at"`
	// ScriptsDir and RulesDir are the watched directories.
	ScriptsDir string `json:"scripts_dir"`
	RulesDir   string `json:"rules_dir"`
	// Files are the policy files of the current generation.
	Files []string `json:"files"`
	// FilesHash is the SHA-256 of those files' names and contents.
	FilesHash string `json:"files_hash"`
	// Tenants are the tenants defined in rules/tenants, sorted.
	Tenants []string `json:"tenants"`
	// Providers are the providers of rules/providers.lua, in file order.
	Providers []string `json:"providers"`
	// Pools are the pool names of rules/pools.lua, sorted.
	Pools []string `json:"pools"`
	// ReloadErrors counts refused reloads since start.
	ReloadErrors uint64 `json:"reload_errors"`
	// LastError is the most recent refused reload ("" if none), as
	// "file:line: message", and LastErrorAt is when it happened.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Hooks has one entry per hook, in call order.
	Hooks []HookStatus `json:"hooks"`
	// StateResets counts the Lua states discarded since start because
	// they kept more than Options.StateMemory between calls.
	StateResets uint64 `json:"state_resets"`
	// QuarantinesEntered counts the quarantines since start, and
	// Quarantined lists the keys in quarantine now.
	QuarantinesEntered uint64       `json:"quarantines_entered"`
	Quarantined        []Quarantine `json:"quarantined,omitempty"`
}

// HookStatus describes one hook.
type HookStatus struct {
	// Name is the hook's Lua name.
	Name string `json:"name"`
	// Defined is where the default is defined ("file:line"), or
	// "built-in" when no script defines it and the Go policy decides.
	Defined string `json:"defined"`
	// Overrides lists the tenants whose scripts override this hook.
	Overrides []string `json:"overrides,omitempty"`
	// OverridesAt says where each of those overrides is defined
	// ("file:line"), by tenant.
	OverridesAt map[string]string `json:"overrides_at,omitempty"`
	// Calls, Errors, Timeouts and MemoryFailures count calls since
	// start; errors, timeouts and memory failures (calls stopped by their
	// memory budget) took the safe outcome.
	Calls          uint64 `json:"calls"`
	Errors         uint64 `json:"errors"`
	Timeouts       uint64 `json:"timeouts"`
	MemoryFailures uint64 `json:"memory_failures"`
}

// Warmups returns the warm-up schedules of rules/pools.lua, by IP.
func (e *Engine) Warmups() map[string]policy.Warmup {
	return e.cur.Load().warmups
}

// Status returns a snapshot of the current generation and the counters.
func (e *Engine) Status() Status {
	g := e.cur.Load()
	s := Status{
		Generation:   g.number,
		LoadedAt:     g.loadedAt,
		ScriptsDir:   e.opts.ScriptsDir,
		RulesDir:     e.opts.RulesDir,
		Files:        g.fileList(),
		FilesHash:    g.filesHash(),
		Providers:    g.providers.names(),
		Pools:        g.pools,
		ReloadErrors: e.reloadErrors.Load(),
		StateResets:  e.stateResets.Load(),

		QuarantinesEntered: e.quarantine.entered.Load(),
		Quarantined:        e.quarantines(),
	}
	for name := range g.tenants {
		s.Tenants = append(s.Tenants, name)
	}
	sort.Strings(s.Tenants)
	e.statusMu.Lock()
	if e.lastErr != nil {
		s.LastError, s.LastErrorAt = errorText(e.lastErr), e.lastErrAt
	}
	e.statusMu.Unlock()
	for h := range numHooks {
		hs := HookStatus{
			Name:     hookNames[h],
			Defined:  g.hookPos[h],
			Calls:    e.stats[h].calls.Load(),
			Errors:   e.stats[h].errors.Load(),
			Timeouts: e.stats[h].timeouts.Load(),

			MemoryFailures: e.stats[h].memory.Load(),
		}
		if hs.Defined == "" {
			hs.Defined = "built-in"
		}
		for t, hooks := range g.overrides {
			if contains(hooks, hookNames[h]) {
				hs.Overrides = append(hs.Overrides, t)
				if hs.OverridesAt == nil {
					hs.OverridesAt = map[string]string{}
				}
				hs.OverridesAt[t] = g.overridePos[t][h]
			}
		}
		sort.Strings(hs.Overrides)
		s.Hooks = append(s.Hooks, hs)
	}
	return s
}

// errorText is the "file:line: message" of a load error, without the
// package prefixes added on the way up.
func errorText(err error) string {
	var se *ScriptError
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}
