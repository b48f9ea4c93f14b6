package luadata

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// DefaultTimeout is the default of Options.Timeout: reading data takes
// milliseconds, so a file still running after it has a loop by mistake.
const DefaultTimeout = 2 * time.Second

// DefaultMaxResult is the default of Options.MaxResult.
const DefaultMaxResult = 16 << 20

// Options configure a sandboxed state and the run of a data file.
type Options struct {
	// Timeout bounds the run of one file by Run and LoadFile; a file still
	// running after it is stopped. NewState does not use it: a state that
	// outlives one file (the policy engine's) gets a deadline per use. The
	// default value is DefaultTimeout (2s).
	Timeout time.Duration
	// MaxResult is the longest string, in bytes, that one call of
	// string.gsub or table.concat may build. The default value is
	// DefaultMaxResult (16 MiB).
	MaxResult int64
}

// EnsureDefaults fills in the zero fields of o with their default values.
func (o *Options) EnsureDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResult <= 0 {
		o.MaxResult = DefaultMaxResult
	}
}

// maxRepLen caps the result of string.rep: a typo such as
// string.rep(s, 1e9) must fail as a script error, not exhaust the node's
// memory inside a single Go call that no deadline can interrupt.
const maxRepLen = 1 << 20

// removedBase are the base-library functions a file must not reach: file
// access (dofile, loadfile), code loading from strings (load, loadstring),
// the file-system module system (module, require), a global stop-the-world
// GC (collectgarbage), stdout (print, _printregs), and environment rewiring
// (getfenv, setfenv, newproxy), which would let one file reach into
// another's globals.
var removedBase = []string{
	"dofile", "loadfile", "load", "loadstring", "module", "require",
	"collectgarbage", "print", "_printregs", "getfenv", "setfenv", "newproxy",
}

// NewState returns a Lua state with only the safe standard libraries: base
// without file and code loading, string, table and math, with the string
// functions that could build a huge result in one call bounded (see the
// package documentation). The caller closes it, and sets a context on it
// to bound its runs.
func NewState(opts Options) *lua.LState {
	opts.EnsureDefaults()
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
		if f, ok := str.RawGetString("format").(*lua.LFunction); ok && f.IsG {
			str.RawSetString("format", L.NewFunction(boundedFormat(f.GFunction)))
		}
		if f, ok := str.RawGetString("gsub").(*lua.LFunction); ok && f.IsG {
			str.RawSetString("gsub", L.NewFunction(boundedGsub(f.GFunction, opts.MaxResult)))
		}
	}
	if tab, ok := g.RawGetString(lua.TabLibName).(*lua.LTable); ok {
		if f, ok := tab.RawGetString("concat").(*lua.LFunction); ok && f.IsG {
			tab.RawSetString("concat", L.NewFunction(boundedConcat(f.GFunction, opts.MaxResult)))
		}
	}
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
