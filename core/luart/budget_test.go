package luart

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
)

// faultyTenant misbehaves on demand; with the smoke test's message it
// behaves, so the generation loads.
const faultyTenant = `-- Misbehaves when the subject asks it to.
function classify(msg)
  local s = msg:subject() or ""
  if s == "spin" then
    while true do end
  elseif s == "boom" then
    error("boom")
  elseif s == "bad class" then
    return { class = "promotional" }
  elseif s == "typo" then
    return { clas = "newsletter" }
  elseif s == "nil index" then
    local t = nil
    return t.class
  elseif s == "recurse" then
    local function f(n) return 1 + f(n + 1) end
    return f(1)
  elseif s == "go panic" then
    require("explosive").explode()
  end
  return defaults.classify(msg)
end

function on_response(a)
  if a.text == "spin" then
    local n = 0
    while true do n = n + 1 end
  end
  return defaults.on_response(a)
end
`

// explosive is a plugin module whose function panics in Go.
type explosive struct{}

func (explosive) Name() string { return "explosive" }

func (explosive) Loader(L *lua.LState) int {
	L.Push(L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"explode": func(*lua.LState) int { panic("kaboom") },
	}))
	return 1
}

func TestRunawayAndErroringHooks(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/tenants/faulty.lua": faultyTenant})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: 250 * time.Millisecond,
		Modules: []Module{explosive{}}})
	ctx := context.Background()

	tests := []struct {
		subject string
		timeout bool
		line    int    // where the failure is reported in faulty.lua
		msg     string // part of the message
	}{
		{"spin", true, 5, "time budget"},
		{"boom", false, 7, "boom"},
		{"bad class", false, 2, `class "promotional"`},
		{"typo", false, 2, "unknown field clas"},
		{"nil index", false, 14, "attempt to index"},
		{"recurse", false, 16, "stack overflow"},
		{"go panic", false, 2, "Go function panicked: kaboom"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			m := loadMessage(t, "transactional.eml", "faulty")
			m.Header.Set("Subject", tt.subject)
			_, err := e.Classify(ctx, m)
			var he *HookError
			if !errors.As(err, &he) {
				t.Fatalf("Classify error = %v, want a *HookError", err)
			}
			if he.Hook != "classify" || he.Tenant != "faulty" || he.Timeout != tt.timeout {
				t.Errorf("HookError = %+v", he)
			}
			if errors.Is(err, ErrBudget) != tt.timeout {
				t.Errorf("errors.Is(err, ErrBudget) = %v, want %v", !tt.timeout, tt.timeout)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			var se *ScriptError
			if tt.line > 0 && (!errors.As(err, &se) || !strings.HasSuffix(se.File, "scripts/tenants/faulty.lua") || se.Line != tt.line) {
				t.Errorf("error %q is not at faulty.lua:%d", err, tt.line)
			}
		})
	}

	// A delivery-side hook that runs away: the attempt is retried by the core.
	_, err := e.OnResponse(ctx, &policy.Attempt{Stage: policy.StageRcpt, Reply: reply.New(451, "4.3.0", "spin"), Tenant: "faulty", Provider: "gmail"})
	if !errors.Is(err, ErrBudget) {
		t.Errorf("OnResponse runaway: err = %v, want ErrBudget", err)
	}

	// The engine keeps serving, the faulty tenant included.
	for _, tenant := range []string{"faulty", "example", ""} {
		m := loadMessage(t, "transactional.eml", tenant)
		c, err := e.Classify(ctx, m)
		if err != nil || c.Class != message.Transactional {
			t.Errorf("tenant %q after failures: Classify = %+v, %v", tenant, c, err)
		}
	}
	st := e.Status()
	hooks := map[string]HookStatus{}
	for _, h := range st.Hooks {
		hooks[h.Name] = h
	}
	if c := hooks["classify"]; c.Timeouts != 1 || c.Errors != 6 || c.Calls != 10 {
		t.Errorf("classify status = %+v, want 10 calls, 6 errors, 1 timeout", c)
	}
	if r := hooks["on_response"]; r.Timeouts != 1 {
		t.Errorf("on_response status = %+v, want 1 timeout", r)
	}
}

func TestCallerCancellationIsNotCountedAsTimeout(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/tenants/faulty.lua": faultyTenant})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: time.Minute, QuarantineStrikes: 1 << 30})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := loadMessage(t, "transactional.eml", "faulty")
	m.Header.Set("Subject", "spin")
	if _, err := e.Classify(ctx, m); err == nil || errors.Is(err, ErrBudget) {
		t.Errorf("Classify with a cancelled context = %v, want a cancellation error", err)
	}
	if c := e.Status().Hooks[hClassify]; c.Timeouts != 0 {
		t.Errorf("classify status = %+v, want no timeout counted", c)
	}
}

func TestLoadTimeout(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/spin.lua": "while true do end\nfunction on_bounce(r) end\n"})
	_, err := New(Options{ScriptsDir: scripts, RulesDir: rules, LoadTimeout: time.Second})
	var se *ScriptError
	if !errors.As(err, &se) || !strings.HasSuffix(se.File, "scripts/spin.lua") || se.Line != 1 || !strings.Contains(se.Msg, "load time budget") {
		t.Fatalf("New = %v, want an error at scripts/spin.lua:1", err)
	}
}

// hogTenant holds ever more memory on demand; with the smoke test's
// message it behaves, so the generation loads.
const hogTenant = `-- Holds memory when the subject asks it to.
function classify(msg)
  local s = msg:subject() or ""
  if s == "double" then
    local x = "x"
    while true do x = x .. x end
  elseif s == "double global" then
    big = "x"
    while true do big = big .. big end
  elseif s == "table" then
    local t = {}
    for i = 1, 1e9 do t[i] = i end
  elseif s == "format" then
    return { class = string.format("%999999999d", 1) }
  elseif s == "concat" then
    local t = {}
    local mb = string.rep("x", 1048576)
    for i = 1, 64 do t[i] = mb end
    return { class = table.concat(t) }
  elseif s == "gsub" then
    local mb = string.rep("x", 1048576)
    return { class = string.gsub(string.rep("x", 20), "x", mb) }
  elseif s == "gsub every byte" then
    local spaces = string.rep(" ", 1048576)
    return { class = spaces:gsub(" ", "") }
  elseif s == "keep" then
    kept = kept or {}
    kept[#kept + 1] = string.rep("k", 1048576)
  end
  return defaults.classify(msg)
end
`

func TestMemoryBudget(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/tenants/hog.lua": hogTenant})
	// A time budget long enough that only the memory budget can stop the
	// calls.
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: time.Minute, QuarantineStrikes: 1 << 30})
	tests := []struct {
		subject string
		memory  bool   // stopped by the memory budget, or refused by a cap
		msg     string // part of the message
	}{
		{"double", true, "memory budget exceeded"},
		{"double global", true, "memory budget exceeded"},
		{"table", true, "memory budget exceeded"},
		{"format", false, "width or precision over 99"},
		{"concat", false, "table.concat: result longer than"},
		{"gsub", false, "string.gsub: the result could exceed"},
		{"gsub every byte", false, "string.gsub: over 128 replacements in a 1048576-byte string"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			m := loadMessage(t, "transactional.eml", "hog")
			m.Header.Set("Subject", tt.subject)
			_, err := e.Classify(context.Background(), m)
			var he *HookError
			if !errors.As(err, &he) {
				t.Fatalf("Classify error = %v, want a *HookError", err)
			}
			if he.Memory != tt.memory || he.Timeout || errors.Is(err, ErrBudget) || errors.Is(err, ErrMemoryBudget) != tt.memory {
				t.Errorf("HookError = %+v (%v), want memory %v and no timeout", he, err, tt.memory)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
	if c := e.Status().Hooks[hClassify]; c.MemoryFailures != 3 || c.Timeouts != 0 {
		t.Errorf("classify status = %+v, want 3 memory failures and no timeout", c)
	}
	// The engine keeps serving the tenant.
	if c, err := e.Classify(context.Background(), loadMessage(t, "transactional.eml", "hog")); err != nil || c.Class != message.Transactional {
		t.Errorf("Classify after memory failures = %+v, %v", c, err)
	}
}

func TestStateMemoryIsBounded(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/tenants/hog.lua": hogTenant})
	const limit = 4 << 20
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, PoolSize: 1, StateMemory: limit,
		CallTimeout: time.Minute, QuarantineStrikes: 1 << 30})
	const calls = 300 // 1 MiB each
	var most int64
	stopped := 0
	for range calls {
		m := loadMessage(t, "transactional.eml", "hog")
		m.Header.Set("Subject", "keep")
		if _, err := e.Classify(context.Background(), m); err != nil {
			// A call that finds its state already past the memory
			// budget is stopped, and the state discarded as well.
			if !errors.Is(err, ErrMemoryBudget) {
				t.Fatal(err)
			}
			stopped++
		}
		g := e.cur.Load()
		st, err := g.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		size, _ := st.measure(false, unlimited)
		most = max(most, size-st.baseline)
		g.put(st)
	}
	if n := e.Status().StateResets; n == 0 {
		t.Errorf("StateResets = 0 after keeping %d MiB in one state (%d calls stopped); want the state replaced", calls, stopped)
	}
	// The check follows the process's allocation at 1 ms ticks, so the
	// state may pass its limit by what is allocated in a few ticks (and
	// at worst by retainedEvery calls), but never keeps everything.
	if most > calls<<20/2 {
		t.Errorf("a state kept %d bytes, want it bounded near %d", most, limit)
	}
	t.Logf("most kept by the state: %.1f MiB (limit %d MiB); %d calls stopped by the memory budget", float64(most)/(1<<20), limit>>20, stopped)
}

func TestQuarantine(t *testing.T) {
	scripts, rules := policyDirs(t, map[string]string{"scripts/tenants/faulty.lua": faultyTenant})
	var mu sync.Mutex
	var events []event.Event
	var bus event.Bus
	bus.Subscribe(event.SinkFunc(func(ev *event.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, *ev)
	}))
	clock := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Events: &bus, Now: now,
		CallTimeout: 200 * time.Millisecond, QuarantineStrikes: 2, QuarantineTimeout: 5 * time.Millisecond})
	classify := func(client, subject string) error {
		m := loadMessage(t, "transactional.eml", "faulty")
		m.AuthUser, m.ClientIP = "", client
		m.Header.Set("Subject", subject)
		_, err := e.Classify(context.Background(), m)
		return err
	}
	quarantined := func(err error) bool {
		var he *HookError
		return errors.As(err, &he) && he.Timeout && he.Quarantined
	}
	for i := range 2 {
		if err := classify("192.0.2.1", "spin"); !errors.Is(err, ErrBudget) || quarantined(err) {
			t.Fatalf("spin %d = %v, want a time budget failure outside quarantine", i, err)
		}
	}
	st := e.Status()
	want := Quarantine{Hook: "classify", Tenant: "faulty", Client: "192.0.2.1", Since: clock, Until: clock.Add(time.Minute)}
	if st.QuarantinesEntered != 1 || len(st.Quarantined) != 1 || st.Quarantined[0] != want {
		t.Fatalf("Status quarantine = %d, %+v; want %+v", st.QuarantinesEntered, st.Quarantined, want)
	}
	// The offender's looping messages now fail under the short budget, its
	// other messages still pass, and other clients are not affected.
	if err := classify("192.0.2.1", "spin"); !quarantined(err) {
		t.Errorf("spin in quarantine = %v, want a quarantined timeout", err)
	}
	if err := classify("192.0.2.1", "fine"); err != nil {
		t.Errorf("an ordinary message of the quarantined client = %v", err)
	}
	if err := classify("192.0.2.2", "spin"); !errors.Is(err, ErrBudget) || quarantined(err) {
		t.Errorf("another client's spin = %v, want a time budget failure outside quarantine", err)
	}

	clockMu.Lock()
	clock = clock.Add(2 * time.Minute)
	clockMu.Unlock()
	if err := classify("192.0.2.1", "fine"); err != nil {
		t.Errorf("after the quarantine: %v", err)
	}
	if q := e.Status().Quarantined; len(q) != 0 {
		t.Errorf("Status quarantine after release = %+v", q)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, ev := range events {
		if ev.Category == event.HookQuarantined || ev.Category == event.HookReleased {
			got = append(got, string(ev.Category)+" "+ev.Tenant+": "+ev.Reason)
		}
	}
	wantEvents := []string{
		"quarantined faulty: hook classify quarantined after 2 budget failures in 1m0s for client 192.0.2.1",
		"released faulty: hook classify released from quarantine for client 192.0.2.1",
	}
	if !slices.Equal(got, wantEvents) {
		t.Errorf("events = %q, want %q", got, wantEvents)
	}
}
