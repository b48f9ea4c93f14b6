package luadata

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// run compiles src as file "rules/test.lua" and runs it under opts.
func run(t *testing.T, src string, opts Options) (*lua.LTable, error) {
	t.Helper()
	c, err := Compile("rules/test.lua", []byte(src))
	if err != nil {
		return nil, err
	}
	return Run(c, opts)
}

func TestForbiddenGlobalsAbsent(t *testing.T) {
	names := append([]string{"io", "os", "debug", "coroutine", "package", "channel"}, removedBase...)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tbl, err := run(t, "return { present = "+name+" ~= nil }", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tbl.RawGetString("present") != lua.LFalse {
				t.Errorf("%s is reachable in the sandbox", name)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name, src string
		// want is the error's string form, "" when the file must load.
		want string
	}{
		{"data", "local t = {}\ntable.insert(t, string.upper('a'))\nreturn { list = t, n = math.floor(2.5) }", ""},
		{"small rep", "assert(('ab'):rep(3) == 'ababab')\nreturn {}", ""},
		{"format", "assert(string.format('%5s-%d', 'a', 1) == '    a-1')\nreturn {}", ""},
		{"pcall", "assert(not pcall(error, 'x'))\nreturn {}", ""},
		{"huge string.rep", "local x = 1\nlocal s = string.rep('x', 1e9)\nreturn {}",
			"rules/test.lua:2: string.rep: result longer than 1048576 bytes"},
		{"huge rep as a method", "return { ('xy'):rep(1e9) }",
			"rules/test.lua:1: string.rep: result longer than 1048576 bytes"},
		{"huge format width", "return { string.format('%999999999d', 1) }",
			"rules/test.lua:1: string.format: width or precision over 99"},
		{"huge gsub", "local s = ('x'):rep(1048576)\nreturn { s:gsub('x', '%0%0%0%0%0%0%0%0%0%0%0%0%0%0%0%0%0') }",
			"rules/test.lua:2: string.gsub: over 128 replacements in a 1048576-byte string"},
		{"huge concat", "local t = {}\nfor i = 1, 20 do t[i] = ('x'):rep(1048576) end\nreturn { table.concat(t) }",
			"rules/test.lua:3: table.concat: result longer than 16777216 bytes"},
		{"load", "local f = load(function() return nil end)\nreturn {}",
			"rules/test.lua:1: attempt to call a non-function object"},
		{"loadstring", "\nlocal f = loadstring('return 1')\nreturn {}",
			"rules/test.lua:2: attempt to call a non-function object"},
		{"io.open", "local f = io.open('/etc/passwd')\nreturn {}",
			"rules/test.lua:1: attempt to index a non-table object(nil) with key 'open'"},
		{"syntax error", "return {\n  a = ,\n}", "rules/test.lua:2: syntax error near ','"},
		{"unclosed table", "return {\n  a = 1,\n", "rules/test.lua:3: syntax error at end of file"},
		{"runtime error", "local x = nil\nreturn { x.y }",
			"rules/test.lua:2: attempt to index a non-table object(nil) with key 'y'"},
		{"error raised", "\n\nerror('no such provider')", "rules/test.lua:3: no such provider"},
		{"error without a position", "error('bare', 0)", "rules/test.lua: bare"},
		{"recursion", "local function f() return 1 + f() end\nreturn { f() }", "rules/test.lua:1: stack overflow"},
		{"not a table", "local n = 42\nreturn n", "rules/test.lua:2: must return a table, not number"},
		{"nothing returned", "local n = 42", "rules/test.lua: must return a table, not nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.src, Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Run error = %v (%T), want an *Error", err, err)
			}
			if e.File != "rules/test.lua" {
				t.Errorf("File = %q, want rules/test.lua", e.File)
			}
			if err.Error() != tt.want {
				t.Errorf("Run error = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestRunStopsAnInfiniteLoop(t *testing.T) {
	_, err := run(t, "local n = 0\nwhile true do\n  n = n + 1\nend\nreturn {}", Options{Timeout: 50 * time.Millisecond})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Run error = %v (%T), want an *Error", err, err)
	}
	// The deadline strikes at whichever line of the loop runs.
	want := "still running after 50ms: a data file must not loop"
	if e.File != "rules/test.lua" || e.Line < 2 || e.Line > 4 || e.Msg != want {
		t.Errorf("Run error = %q, want %q at a line of the loop (2 to 4)", err, want)
	}
}

func TestRunReturnsTheTable(t *testing.T) {
	tbl, err := run(t, "local rules = { { category = 'blocked' } }\nreturn { rules = rules, n = #rules }", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tbl.RawGetString("n") != lua.LNumber(1) {
		t.Errorf("n = %v, want 1", tbl.RawGetString("n"))
	}
	rules, ok := tbl.RawGetString("rules").(*lua.LTable)
	if !ok || rules.RawGetInt(1).(*lua.LTable).RawGetString("category") != lua.LString("blocked") {
		t.Errorf("rules = %v, want the table the file built", tbl.RawGetString("rules"))
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.lua")
	if err := os.WriteFile(path, []byte("return {\n  answer = 42,\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl, err := LoadFile(path, Options{})
	if err != nil || tbl.RawGetString("answer") != lua.LNumber(42) {
		t.Fatalf("LoadFile = %v, %v; want the table with answer = 42", tbl, err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.lua"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestFromLua(t *testing.T) {
	L := NewState(Options{})
	defer L.Close()
	inner := &Error{File: "rules/inner.lua", Line: 7, Msg: "bad"}
	L.SetGlobal("fail", L.NewFunction(func(L *lua.LState) int {
		L.Error(lua.LString("rules/module.lua:3: not a list"), 0)
		return 0
	}))
	pcall := func(src string) error {
		c, err := Compile("rules/s.lua", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		L.Push(L.NewFunctionFromProto(c.Proto))
		return L.PCall(0, 0, nil)
	}
	tests := []struct {
		name string
		err  error
		want Error
	}{
		{"an *Error passes through", inner, *inner},
		{"a wrapped *Error", errors.Join(errors.New("context"), inner), *inner},
		{"no position", errors.New("boom"), Error{Msg: "boom"}},
		{"runtime error", pcall("local x = nil\nreturn x.y"),
			Error{File: "rules/s.lua", Line: 2, Msg: "attempt to index a non-table object(nil) with key 'y'"}},
		{"position of a Go function's error", pcall("fail()"),
			Error{File: "rules/module.lua", Line: 3, Msg: "not a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error to convert")
			}
			got := FromLua(tt.err)
			if *got != tt.want {
				t.Errorf("FromLua(%q) = %#v, want %#v", tt.err, *got, tt.want)
			}
			if strings.Contains(got.Msg, "stack traceback") {
				t.Errorf("FromLua kept the traceback: %q", got.Msg)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e        Error
		str, pos string
	}{
		{Error{File: "rules/a.lua", Line: 3, Msg: "bad"}, "rules/a.lua:3: bad", "rules/a.lua:3"},
		{Error{File: "rules/a.lua", Msg: "bad"}, "rules/a.lua: bad", "rules/a.lua"},
		{Error{Msg: "bad"}, "bad", ""},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.str {
			t.Errorf("Error() = %q, want %q", got, tt.str)
		}
		if got := tt.e.Pos(); got != tt.pos {
			t.Errorf("Pos() = %q, want %q", got, tt.pos)
		}
	}
}
