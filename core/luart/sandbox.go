package luart

import (
	"fmt"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// maxRepLen caps the result of string.rep: a typo such as
// string.rep(s, 1e9) must fail as a script error, not exhaust the node's
// memory inside a single Go call that the time budget cannot interrupt.
const maxRepLen = 1 << 20

// removedBase are the base-library functions a policy script must not
// reach: file access (dofile, loadfile), code loading from strings (load,
// loadstring), the file-system module system (module, require, replaced by
// our own require), a global stop-the-world GC (collectgarbage), stdout
// (print, replaced by core.log), and environment rewiring (getfenv,
// setfenv), which would let one file reach into another's hooks.
var removedBase = []string{
	"dofile", "loadfile", "load", "loadstring", "module", "require",
	"collectgarbage", "print", "_printregs", "getfenv", "setfenv", "newproxy",
}

// loader makes a module's value in one Lua state; it is called at most once
// per state, on the first require of the module's name.
type loader func(L *lua.LState) (lua.LValue, error)

// newSandbox returns a Lua state with only the safe standard libraries
// (base without file and code loading, string, table, math) and a require
// that serves exactly the modules in preload. The string functions that
// can build a result much longer than their arguments (string.format,
// string.gsub, table.concat) refuse a result over maxResult bytes: one Go
// call cannot be interrupted, so its size is capped before it runs.
func newSandbox(preload map[string]loader, maxResult int64) *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    200,
		RegistrySize:     1024,
		RegistryMaxSize:  256 * 1024,
		RegistryGrowStep: 256,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	for _, name := range removedBase {
		g.RawSetString(name, lua.LNil)
	}
	if str, ok := g.RawGetString(lua.StringLibName).(*lua.LTable); ok {
		str.RawSetString("rep", L.NewFunction(boundedRep))
		if slow, ok := str.RawGetString("find").(*lua.LFunction); ok && slow.IsG {
			str.RawSetString("find", L.NewFunction(fastFind(slow.GFunction)))
		}
		if f, ok := str.RawGetString("format").(*lua.LFunction); ok && f.IsG {
			str.RawSetString("format", L.NewFunction(boundedFormat(f.GFunction)))
		}
		if f, ok := str.RawGetString("gsub").(*lua.LFunction); ok && f.IsG {
			str.RawSetString("gsub", L.NewFunction(boundedGsub(f.GFunction, maxResult)))
		}
	}
	if tab, ok := g.RawGetString(lua.TabLibName).(*lua.LTable); ok {
		if f, ok := tab.RawGetString("concat").(*lua.LFunction); ok && f.IsG {
			tab.RawSetString("concat", L.NewFunction(boundedConcat(f.GFunction, maxResult)))
		}
	}
	loaded := L.NewTable()
	g.RawSetString("require", L.NewFunction(func(L *lua.LState) int {
		return require(L, loaded, preload)
	}))
	return L
}

// boundedRep is string.rep with a cap on the result's length.
func boundedRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if n > maxRepLen/len(s) {
		L.RaiseError("string.rep: result longer than %d bytes", maxRepLen)
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}

// maxFormatWidth is the largest width or precision string.format accepts,
// as in Lua 5.1 (two digits): "%999999999d" must not build a gigabyte.
const maxFormatWidth = 99

// boundedFormat is string.format refusing widths and precisions over
// maxFormatWidth, so that its result is bounded by its arguments.
func boundedFormat(format lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			n := 0
			for ; i < len(f) && (f[i] >= '0' && f[i] <= '9' || strings.IndexByte("-+ #.", f[i]) >= 0); i++ {
				if f[i] >= '0' && f[i] <= '9' {
					n = min(n*10+int(f[i]-'0'), maxFormatWidth+1)
				} else {
					n = 0
				}
				if n > maxFormatWidth {
					L.RaiseError("string.format: width or precision over %d", maxFormatWidth)
				}
			}
		}
		return format(L)
	}
}

// gsubScan is the subject length from which string.gsub counts its
// matches before it runs; below it, the worst case is cheap.
const gsubScan = 4096

// maxGsubWork bounds matches*len(subject) for string.gsub: gopher-lua
// copies the subject once per replacement, so a crafted subject with a
// match at every byte would run for hours inside one uninterruptible call.
const maxGsubWork = 1 << 27

// boundedGsub is string.gsub refusing, before it runs, a call whose
// result could exceed limit bytes (every match replaced by the string
// replacement with every capture reference as long as the subject) or
// whose replacements would copy the subject too many times.
func boundedGsub(gsub lua.LGFunction, limit int64) lua.LGFunction {
	return func(L *lua.LState) int {
		s := L.CheckString(1)
		matches := int64(len(s)) + 1
		if n, ok := L.Get(4).(lua.LNumber); ok && int64(n) >= 0 && int64(n) < matches {
			matches = int64(n)
		}
		if len(s) >= gsubScan {
			// Count no further than the first match past the bound.
			most := min(matches, maxGsubWork/int64(len(s))+1)
			mds, err := pm.Find(L.CheckString(2), []byte(s), 0, int(most))
			if err == nil {
				matches = int64(len(mds))
			}
			if matches*int64(len(s)) > maxGsubWork {
				L.RaiseError("string.gsub: over %d replacements in a %d-byte string", maxGsubWork/len(s), len(s))
			}
		}
		if repl, ok := L.Get(3).(lua.LString); ok {
			per := int64(len(repl)) + int64(strings.Count(string(repl), "%"))*int64(len(s))
			if per > 0 && matches > (limit-int64(len(s)))/per {
				L.RaiseError("string.gsub: the result could exceed %d bytes", limit)
			}
		}
		return gsub(L)
	}
}

// boundedConcat is table.concat refusing a result over limit bytes,
// computed before anything is built.
func boundedConcat(concat lua.LGFunction, limit int64) lua.LGFunction {
	return func(L *lua.LState) int {
		t := L.CheckTable(1)
		sep := int64(len(L.OptString(2, "")))
		i, j := L.OptInt(3, 1), L.OptInt(4, t.Len())
		var size int64
		for k := max(i, 1); k <= j && k <= t.Len(); k++ {
			switch v := t.RawGetInt(k).(type) {
			case lua.LString:
				size += int64(len(v)) + sep
			case lua.LNumber:
				size += 24 + sep
			}
			if size > limit {
				L.RaiseError("table.concat: result longer than %d bytes", limit)
			}
		}
		return concat(L)
	}
}

// loading marks a module whose loader is running, to report require cycles.
var loading = &lua.LUserData{}

// require returns the module called name, loading it on first use. Only
// names in preload exist: there is no search path and no file access.
func require(L *lua.LState, loaded *lua.LTable, preload map[string]loader) int {
	name := L.CheckString(1)
	switch v := loaded.RawGetString(name); v {
	case lua.LNil:
	case lua.LValue(loading):
		L.RaiseError("require %q: module requires itself", name)
	default:
		L.Push(v)
		return 1
	}
	load, ok := preload[name]
	if !ok {
		L.RaiseError("module %q is not available (available: %s)", name, strings.Join(moduleNames(preload), ", "))
	}
	loaded.RawSetString(name, loading)
	v, err := load(L)
	if err != nil {
		loaded.RawSetString(name, lua.LNil)
		// Level 0: the error keeps the position inside the module's file,
		// where the mistake is, not the line of the require.
		L.Error(lua.LString(err.Error()), 0)
	}
	if v == lua.LNil {
		v = lua.LTrue
	}
	loaded.RawSetString(name, v)
	L.Push(v)
	return 1
}

func moduleNames(preload map[string]loader) []string {
	names := make([]string, 0, len(preload))
	for n := range preload {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dataLoader runs a compiled rules file once in the requiring state, with
// globals of its own, and returns the table the file returns.
func dataLoader(src *source) loader {
	return func(L *lua.LState) (lua.LValue, error) {
		return runData(L, src)
	}
}

// runData runs a rules file and returns its table.
func runData(L *lua.LState, src *source) (*lua.LTable, error) {
	env := L.NewTable()
	meta := L.NewTable()
	meta.RawSetString("__index", L.G.Global)
	L.SetMetatable(env, meta)
	fn := L.NewFunctionFromProto(src.proto)
	fn.Env = env
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		return nil, luaError(err)
	}
	v := L.Get(-1)
	L.Pop(1)
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, &ScriptError{File: src.rel, Msg: fmt.Sprintf("must return a table, returned %s", v.Type())}
	}
	return t, nil
}

// moduleLoader adapts a plugin's Module to a loader.
func moduleLoader(m Module) loader {
	return func(L *lua.LState) (lua.LValue, error) {
		top := L.GetTop()
		n := m.Loader(L)
		v := lua.LValue(lua.LNil)
		if n > 0 && L.GetTop() > top {
			v = L.Get(top + 1)
		}
		L.SetTop(top)
		return v, nil
	}
}
