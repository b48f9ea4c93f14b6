package luart

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// string.find is the workhorse of policy scripts (matching reply texts,
// subjects, header values), and gopher-lua's pattern engine parses the
// pattern on every call and allocates at every start position it tries.
// fastFind keeps Lua semantics exactly but skips that work when it can: a
// pattern without magic characters ("too many connections", "4%.7%.28",
// "^alerts@example%.com$") is a plain string comparison, and any other
// pattern is only tried where its literal prefix occurs ("s31[45]0" starts
// with "s31"), if it occurs at all.

// findPlan is what fastFind knows about one pattern.
type findPlan struct {
	// literal is the text every match starts with.
	literal string
	// whole is true when the pattern is exactly literal (plus anchors).
	whole bool
	// head and tail are the anchors "^" (match at the start position
	// only) and "$" (match must end the string).
	head, tail bool
}

// maxFindPlans bounds each state's cache of patterns; scripts use a fixed
// set of patterns, but one that builds patterns from data must not grow it
// without end.
const maxFindPlans = 512

// planFind computes the findPlan of a Lua pattern.
func planFind(p string) findPlan {
	var plan findPlan
	if strings.HasPrefix(p, "^") {
		plan.head = true
		p = p[1:]
	}
	var lit []byte
	for i := 0; i < len(p); {
		c := p[i]
		width := 1
		switch {
		case c == '%' && i+1 < len(p) && !isAlnum(p[i+1]):
			c, width = p[i+1], 2 // an escaped magic character is literal
		case c == '$' && i == len(p)-1:
			plan.literal, plan.whole, plan.tail = string(lit), true, true
			return plan
		case strings.IndexByte("^$()%.[]*+-?", c) >= 0:
			if (c == '*' || c == '-' || c == '?') && len(lit) > 0 {
				lit = lit[:len(lit)-1] // the quantified character may be absent
			}
			plan.literal = string(lit)
			return plan
		}
		lit = append(lit, c)
		i += width
	}
	plan.literal, plan.whole = string(lit), true
	return plan
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// fastFind returns string.find built on slow, the library's own, with a
// cache of plans private to one Lua state.
func fastFind(slow lua.LGFunction) lua.LGFunction {
	plans := map[string]findPlan{}
	return func(L *lua.LState) int {
		s := L.CheckString(1)
		p := L.CheckString(2)
		init := L.OptInt(3, 1)
		if init < 0 {
			init = len(s) + init + 1
		}
		if init < 1 {
			init = 1
		}
		start := init - 1
		if start > len(s) || p == "" {
			return slow(L)
		}
		plan, ok := plans[p]
		if !ok {
			plan = planFind(p)
			if len(plans) < maxFindPlans {
				plans[p] = plan
			}
		}
		if L.GetTop() >= 4 && lua.LVAsBool(L.Get(4)) {
			plan = findPlan{literal: p, whole: true}
		}
		rest := s[start:]
		var i int
		switch {
		case plan.head && !strings.HasPrefix(rest, plan.literal),
			plan.head && plan.tail && len(rest) != len(plan.literal):
			L.Push(lua.LNil)
			return 1
		case plan.head:
			i = 0
		case plan.literal == "":
			return slow(L)
		case plan.tail:
			if !strings.HasSuffix(rest, plan.literal) {
				L.Push(lua.LNil)
				return 1
			}
			i = len(rest) - len(plan.literal)
		default:
			if i = strings.Index(rest, plan.literal); i < 0 {
				L.Push(lua.LNil)
				return 1
			}
		}
		if plan.whole {
			L.Push(lua.LNumber(start + i + 1))
			L.Push(lua.LNumber(start + i + len(plan.literal)))
			return 2
		}
		if plan.head {
			return slow(L)
		}
		if L.GetTop() < 3 {
			L.SetTop(3)
		}
		L.Replace(3, lua.LNumber(start+i+1))
		return slow(L)
	}
}
