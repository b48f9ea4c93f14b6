package luart

import (
	"errors"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestSandbox(t *testing.T) {
	t.Parallel()
	preload := map[string]loader{
		"greeting": func(L *lua.LState) (lua.LValue, error) { return lua.LString("ciao"), nil },
	}
	tests := []struct {
		name, code string
		ok         bool
	}{
		{"io library", `io.open("/etc/passwd")`, false},
		{"os.execute", `os.execute("true")`, false},
		{"os.getenv", `return os.getenv("HOME")`, false},
		{"debug library", `debug.getinfo(1)`, false},
		{"dofile", `dofile("/etc/passwd")`, false},
		{"loadfile", `loadfile("/etc/passwd")`, false},
		{"loadstring", `loadstring("return 1")`, false},
		{"load", `load(function() return nil end)`, false},
		{"require os", `require "os"`, false},
		{"require io", `require "io"`, false},
		{"require a file", `require "scripts.classify"`, false},
		{"package library", `package.loadlib("x", "y")`, false},
		{"module", `module("x")`, false},
		{"collectgarbage", `collectgarbage()`, false},
		{"print", `print("x")`, false},
		{"setfenv", `setfenv(1, {})`, false},
		{"coroutine", `coroutine.create(function() end)`, false},
		{"huge string.rep", `string.rep("x", 1e9)`, false},
		{"huge rep as a method", `("xy"):rep(1e9)`, false},
		{"string library", `assert(string.format("%s-%d", "a", 1) == "a-1")`, true},
		{"small rep", `assert(("ab"):rep(3) == "ababab")`, true},
		{"table and math", `local t = {3, 1, 2}; table.sort(t); assert(t[1] == 1 and math.floor(2.5) == 2)`, true},
		{"pcall", `assert(not pcall(error, "x"))`, true},
		{"registered module", `assert(require("greeting") == "ciao")`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			L := newSandbox(preload, 32<<20)
			defer L.Close()
			err := L.DoString(tt.code)
			if (err == nil) != tt.ok {
				t.Errorf("%s: err = %v, want ok = %v", tt.code, err, tt.ok)
			}
		})
	}
}

func TestSandboxAtLoadTime(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{
		"scripts/tenants/example.lua": "local f = io.open('/etc/passwd')\nfunction classify(msg) return defaults.classify(msg) end\n",
	})
	_, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout})
	var se *ScriptError
	if !errors.As(err, &se) || !strings.HasSuffix(se.File, "scripts/tenants/example.lua") || se.Line != 1 {
		t.Fatalf("New = %v, want a refusal at scripts/tenants/example.lua:1", err)
	}
}
