package luart

import (
	"fmt"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// findBoth calls gopher-lua's string.find and fastFind with the same
// arguments in one state and returns both results as text.
func findBoth(L *lua.LState, args ...lua.LValue) (slow, fast string, slowErr error) {
	call := func(name string) (string, error) {
		fn := L.GetGlobal(name)
		top := L.GetTop()
		if err := L.CallByParam(lua.P{Fn: fn, NRet: lua.MultRet, Protect: true}, args...); err != nil {
			return "", err
		}
		var out []string
		for i := top + 1; i <= L.GetTop(); i++ {
			out = append(out, L.Get(i).String())
		}
		L.SetTop(top)
		return fmt.Sprint(out), nil
	}
	slow, slowErr = call("slowfind")
	fast, fastErr := call("fastfind")
	if fastErr != nil {
		fast = "error: " + fastErr.Error()
	}
	return slow, fast, slowErr
}

func findState() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	L.Push(L.NewFunction(lua.OpenString))
	L.Push(lua.LString(lua.StringLibName))
	L.Call(1, 0)
	str := L.GetGlobal(lua.StringLibName).(*lua.LTable)
	slow := str.RawGetString("find").(*lua.LFunction)
	L.SetGlobal("slowfind", slow)
	L.SetGlobal("fastfind", L.NewFunction(fastFind(slow.GFunction)))
	return L
}

func TestFastFindMatchesLua(t *testing.T) {
	t.Parallel()
	L := findState()
	defer L.Close()
	line := "421 4.7.28 [192.0.2.10] our system has detected an unusual rate (s3150) [ts03] ofr005_104"
	patterns := []string{
		"too many connections", "4%.7%.28", "s31[45]0", "%[ts0[123]%]", "ofr%d*_104", "^421",
		"^45[01] .*try again later", "unusual", "rate %(s3150%)", "grey%-list", "grey-list", "a*",
		"(%d+)%.(%d+)", "()detected", "x?421", "42+1", "%d", "", "%", "ts03%]$", "104$", ".",
	}
	for _, p := range patterns {
		for _, init := range []lua.LValue{lua.LNil, lua.LNumber(1), lua.LNumber(5), lua.LNumber(-10), lua.LNumber(200)} {
			args := []lua.LValue{lua.LString(line), lua.LString(p)}
			if init != lua.LNil {
				args = append(args, init)
			}
			slow, fast, err := findBoth(L, args...)
			if err != nil {
				continue // gopher-lua refuses the pattern; fastFind may answer earlier
			}
			if slow != fast {
				t.Errorf("find(line, %q, %v): fast %s, Lua %s", p, init, fast, slow)
			}
			plain := append(args[:2:2], lua.LNumber(1), lua.LTrue)
			if slow, fast, err := findBoth(L, plain...); err == nil && slow != fast {
				t.Errorf("find(line, %q, 1, true): fast %s, Lua %s", p, fast, slow)
			}
		}
	}
}

func FuzzFastFind(f *testing.F) {
	f.Add("421 4.7.0 Too many connections, slow down", "slow down", 1)
	f.Add("550 5.7.1 (S3150) block list", "s31[45]0", 3)
	f.Add("greylisted, try again later", "grey%-list", -5)
	f.Add("abc", "a%.-b+c*", 0)
	f.Add("alerts@example.com", "^alerts@example%.com$", 1)
	f.Add("xxabc", "^abc", 3)
	f.Add("a$b", "a$b", 1)
	f.Add("ends here$", "here%$$", -6)
	L := findState()
	defer L.Close()
	f.Fuzz(func(t *testing.T, s, p string, init int) {
		if len(p) > 64 || len(s) > 256 {
			return // the recursive pattern engine is exponential on long adversarial inputs
		}
		slow, fast, err := findBoth(L, lua.LString(s), lua.LString(p), lua.LNumber(init))
		if err == nil && slow != fast {
			t.Errorf("find(%q, %q, %d): fast %s, Lua %s", s, p, init, fast, slow)
		}
	})
}
