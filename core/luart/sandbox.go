package luart

import (
	"fmt"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/luadata"
)

// loader makes a module's value in one Lua state; it is called at most once
// per state, on the first require of the module's name.
type loader func(L *lua.LState) (lua.LValue, error)

// newSandbox returns a Lua state with only the safe standard libraries
// (luadata.NewState: base without file and code loading, string, table,
// math, and the string functions that could build a huge result bounded
// by maxResult), a faster string.find, and a require that serves exactly
// the modules in preload.
func newSandbox(preload map[string]loader, maxResult int64) *lua.LState {
	L := luadata.NewState(luadata.Options{MaxResult: maxResult})
	g := L.G.Global
	if str, ok := g.RawGetString(lua.StringLibName).(*lua.LTable); ok {
		if slow, ok := str.RawGetString("find").(*lua.LFunction); ok && slow.IsG {
			str.RawSetString("find", L.NewFunction(fastFind(slow.GFunction)))
		}
	}
	loaded := L.NewTable()
	g.RawSetString("require", L.NewFunction(func(L *lua.LState) int {
		return require(L, loaded, preload)
	}))
	return L
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
		return nil, luadata.FromLua(err)
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
