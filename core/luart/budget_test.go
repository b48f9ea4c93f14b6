package luart

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

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
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: time.Minute})
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
