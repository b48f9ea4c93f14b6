package luart

import (
	"context"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/policy"
	"corriere/core/reply"
)

// bounceClassifier turns bounces and replies into the bounce taxonomy.
type bounceClassifier interface {
	Classify(r *policy.BounceReport) policy.BounceVerdict
	ClassifyReply(r *reply.Reply) policy.BounceVerdict
}

// statusClassifier classifies by enhanced status code alone, as
// policy.Default does; it serves when rules/bounces.lua is absent.
type statusClassifier struct{}

func (statusClassifier) Classify(r *policy.BounceReport) policy.BounceVerdict {
	v, _ := (&policy.Default{}).OnBounce(context.Background(), r) // Default.OnBounce never fails
	return v
}

func (statusClassifier) ClassifyReply(r *reply.Reply) policy.BounceVerdict {
	cat := policy.CategoryForStatus(r.EffectiveStatus().String())
	return policy.BounceVerdict{Category: cat, Hard: r.Permanent() && policy.IsHardCategory(cat)}
}

// bouncesModule returns the loader of the "bounces" module: the same
// pattern table (rules/bounces.lua) the asynchronous bounce parser uses,
// so on_response and on_bounce name failures with the same categories.
func bouncesModule(st *state) loader {
	return func(L *lua.LState) (lua.LValue, error) {
		mod := L.NewTable()
		L.SetFuncs(mod, map[string]lua.LGFunction{
			"classify": func(L *lua.LState) int {
				r := reportFromTable(L.CheckTable(1))
				pushBounceVerdict(L, st.gen.bounces.Classify(&r))
				return 1
			},
			"classify_reply": func(L *lua.LState) int {
				r := reply.Reply{Code: L.CheckInt(1), Text: L.OptString(3, "")}
				if s := L.OptString(2, ""); s != "" {
					status, ok := reply.ParseStatus(s)
					if !ok {
						L.ArgError(2, "not an enhanced status code: "+s)
					}
					r.Status = status
				}
				pushBounceVerdict(L, st.gen.bounces.ClassifyReply(&r))
				return 1
			},
		})
		return mod, nil
	}
}

func pushBounceVerdict(L *lua.LState, v policy.BounceVerdict) {
	t := L.CreateTable(0, 2)
	t.RawSetString("category", lua.LString(v.Category))
	t.RawSetString("hard", lua.LBool(v.Hard))
	L.Push(t)
}

// setReportTable fills t with the fields of r (see doc.go, on_bounce).
func setReportTable(t *lua.LTable, r *policy.BounceReport) {
	t.RawSetString("kind", lua.LString(r.Kind))
	t.RawSetString("recipient", lua.LString(r.Recipient))
	t.RawSetString("action", lua.LString(r.Action))
	t.RawSetString("status", lua.LString(r.Status))
	t.RawSetString("reply_code", lua.LNumber(r.ReplyCode))
	t.RawSetString("diagnostic", lua.LString(r.Diagnostic))
	t.RawSetString("remote_mta", lua.LString(r.RemoteMTA))
	t.RawSetString("feedback_type", lua.LString(r.FeedbackType))
	t.RawSetString("subject", lua.LString(r.Subject))
	t.RawSetString("from", lua.LString(r.From))
}

// reportFromTable is the inverse of setReportTable.
func reportFromTable(t *lua.LTable) policy.BounceReport {
	str := func(k string) string {
		if s, ok := t.RawGetString(k).(lua.LString); ok {
			return string(s)
		}
		return ""
	}
	code, _ := t.RawGetString("reply_code").(lua.LNumber)
	return policy.BounceReport{
		Kind:         str("kind"),
		Recipient:    str("recipient"),
		Action:       str("action"),
		Status:       str("status"),
		ReplyCode:    int(code),
		Diagnostic:   str("diagnostic"),
		RemoteMTA:    str("remote_mta"),
		FeedbackType: str("feedback_type"),
		Subject:      str("subject"),
		From:         str("from"),
	}
}
