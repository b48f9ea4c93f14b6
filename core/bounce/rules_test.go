package bounce

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/event"
	"corriere/core/policy"
	"corriere/core/reply"
)

// luaRules evaluates src in a plain Lua state and decodes its value.
func luaRules(t testing.TB, src string) (*Rules, error) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString(src); err != nil {
		t.Fatalf("Lua: %v", err)
	}
	return RulesFromLua(L.Get(-1))
}

func TestRulesFromLuaErrors(t *testing.T) {
	eleven := strings.Repeat(`{ category = "blocked" }, `, 11)
	tests := []struct {
		src, want string
	}{
		{`return 5`, "bounce rules: must return a table of rules, got number"},
		{`return { { hard = true } }`, "bounce rules: rule 1: category missing"},
		{`return { ` + eleven + `{ text = { "x" } } }`, "bounce rules: rule 12: category missing"},
		{`return { { category = "nope" } }`, `rule 1 (nope): unknown category "nope"`},
		{`return { { category = 5 } }`, "category must be a string, got number"},
		{`return { { category = "blocked", txt = { "x" } } }`, `rule 1 (blocked): unknown field "txt"`},
		{`return { { category = "blocked", status = { "5.1" } } }`, `status 1: "5.1" is not an enhanced status code`},
		{`return { { category = "blocked", status = { "3.1.1" } } }`, `status 1: "3.1.1"`},
		{`return { { category = "blocked", reply = { "6xx" } } }`, `reply 1: "6xx" is not a reply code`},
		{`return { { category = "blocked", reply = { "x50" } } }`, `reply 1: "x50"`},
		{`return { { category = "blocked", text = { "" } } }`, "text 1: empty fragment"},
		{`return { { category = "blocked", text = { { "a", 5 } } } }`, "text 1: fragment 2 must be a string"},
		{`return { { category = "blocked", text = { {} } } }`, "text 1: empty list of fragments"},
		{`return { { category = "blocked", unless = 5 } }`, "unless must be a list of strings"},
		{`return { { category = "blocked", hard = "maybe" } }`, `hard must be true, false or "permanent"`},
		{`return { { category = "blocked", all = "yes" } }`, "all must be true or false"},
		{`return { { category = "blocked", kind = { "bogus" } } }`, `kind 1: "bogus" is not one of`},
		{`return { { category = "blocked", command = { "quit" } } }`, `command 1: "quit" is not one of`},
		{`return { { category = "blocked" }, extra = 1 }`, `unexpected key "extra"`},
		{`return { "blocked" }`, "rule 1: must be a table, got string"},
		{`return { { category = "blocked", host = { "a b" } } }`, `host 1: "a b" is not a domain`},
		{`return { { category = "blocked", host = 5 } }`, "host must be a string or a list of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := luaRules(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadRulesFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, src, wantErr string
	}{
		{"ok", `local t = {} table.insert(t, { category = string.lower("BLOCKED") }) return t`, ""},
		{"no io", `local f = io.open("/etc/passwd") return {}`, "bad.lua:1: attempt to index a non-table object(nil) with key 'open'"},
		{"no os", `os.exit(1) return {}`, "with key 'exit'"},
		{"no dofile", `dofile("/etc/passwd") return {}`, "bad.lua:1: attempt to call a non-function object"},
		{"no require", `require("os") return {}`, "attempt to call a non-function object"},
		{"syntax", `return {`, "bad.lua:1: syntax error at end of file"},
		{"bad rule", `return { {} }`, "bad.lua: rule 1: category missing"},
		{"no load", "local f = load(function() return nil end)\nreturn {}", "bad.lua:1: attempt to call a non-function object"},
		{"no loadstring", "\nlocal f = loadstring('return {}')\nreturn f()", "bad.lua:2: attempt to call a non-function object"},
		{"huge string.rep", "local s = string.rep('x', 1e9)\nreturn {}", "bad.lua:1: string.rep: result longer than 1048576 bytes"},
		{"huge rep as a method", "return { { category = 'blocked', text = { ('x'):rep(2e9) } } }", "bad.lua:1: string.rep: result longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.lua")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := LoadRulesFile(path)
			if tt.wantErr == "" {
				if err != nil || r == nil {
					t.Fatalf("LoadRulesFile: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
	if _, err := LoadRulesFile(filepath.Join(dir, "missing.lua")); err == nil {
		t.Error("LoadRulesFile of a missing file succeeded")
	}
}

// semanticsRules exercises every feature of the rule language.
const semanticsRules = `return {
  { category = "feedback", hard = true, kind = { "arf" } },
  { category = "delivered", action = { "delivered" } },
  { category = "mailboxfull", status = { "*.2.2" }, text = { "mailbox full" } },
  { category = "filtered", all = true, status = { "5.2.1" }, text = { "user unknown" } },
  { category = "userunknown", hard = true, command = { "rcpt" }, text = { "user unknown" } },
  { category = "hostunknown", hard = "permanent", text = { { "host ", " not found" } } },
  { category = "rejected", text = { "sender" }, unless = { "sender ip" } },
  { category = "blocked", reply = { "55x" }, command = { "none" } },
  { category = "expired", action = { "delayed" } },
  { category = "systemerror", status = { "5.3.*" } },
  { category = "speeding", host = { "icloud.com", ".me.com" }, text = { "excessive volume" } },
}`

func TestClassifySemantics(t *testing.T) {
	r, err := luaRules(t, semanticsRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		report   policy.BounceReport
		category event.Category
		hard     bool
	}{
		{"kind decides", policy.BounceReport{Kind: "arf", Diagnostic: "user unknown"}, "feedback", true},
		{"action decides", policy.BounceReport{Action: "delivered"}, "delivered", false},
		{"status wildcard", policy.BounceReport{Status: "4.2.2"}, "mailboxfull", false},
		{"text, any case", policy.BounceReport{Diagnostic: "550 MAILBOX FULL"}, "mailboxfull", false},
		{"line break matches a space", policy.BounceReport{Diagnostic: "mailbox\nfull"}, "mailboxfull", false},
		{"all: status and text", policy.BounceReport{Status: "5.2.1", Diagnostic: "User unknown (in reply to end of DATA command)"}, "filtered", false},
		{"all: status alone is not enough", policy.BounceReport{Status: "5.2.1", Diagnostic: "disabled"}, "onhold", false},
		{"command from the text", policy.BounceReport{Status: "5.0.0", Diagnostic: "550 user unknown (in reply to RCPT TO command)"}, "userunknown", true},
		{"command does not match", policy.BounceReport{Diagnostic: "user unknown (in reply to end of DATA command)"}, "onhold", false},
		{"ordered fragments", policy.BounceReport{Status: "5.4.4", Diagnostic: "host example.org not found"}, "hostunknown", true},
		{"ordered fragments, wrong order", policy.BounceReport{Diagnostic: "not found: host"}, "onhold", false},
		{"permanent only when 5xx", policy.BounceReport{Status: "4.4.4", Diagnostic: "host x not found"}, "hostunknown", false},
		{"permanent from the reply code", policy.BounceReport{ReplyCode: 450, Diagnostic: "host x not found"}, "hostunknown", false},
		{"permanent when failed", policy.BounceReport{Action: "failed", Diagnostic: "host x not found"}, "hostunknown", true},
		{"unless vetoes", policy.BounceReport{Diagnostic: "sender ip rejected"}, "onhold", false},
		{"unless spares the rest", policy.BounceReport{Diagnostic: "sender rejected"}, "rejected", false},
		{"reply pattern and no command", policy.BounceReport{ReplyCode: 554, Diagnostic: "go away"}, "blocked", false},
		{"reply pattern, command known", policy.BounceReport{ReplyCode: 554, Diagnostic: "go away (in reply to MAIL FROM command)"}, "onhold", false},
		{"fallback on action", policy.BounceReport{Action: "delayed", Diagnostic: "try later"}, "expired", false},
		{"status subject wildcard", policy.BounceReport{Status: "5.3.5", Diagnostic: "x"}, "systemerror", false},
		{"host: the recipient's domain", policy.BounceReport{Recipient: "a@icloud.com", Diagnostic: "excessive volume"}, "speeding", false},
		{"host: a subdomain, any case", policy.BounceReport{Recipient: "a@Mail.ME.com", Diagnostic: "excessive volume"}, "speeding", false},
		{"host: the remote MTA", policy.BounceReport{Recipient: "a@example.org", RemoteMTA: "mx01.mail.icloud.com [192.0.2.1]", Diagnostic: "excessive volume"}, "speeding", false},
		{"host: only whole labels", policy.BounceReport{Recipient: "a@noticloud.com", RemoteMTA: "mx.fakeicloud.com", Diagnostic: "excessive volume"}, "onhold", false},
		{"command in upper case", policy.BounceReport{Diagnostic: "SMTP server rejected recipient (Error following RCPT command): user unknown"}, "userunknown", true},
		{"the latest command quoted", policy.BounceReport{Diagnostic: "RCPT accepted, then DATA refused: user unknown"}, "onhold", false},
		{"lower case is prose", policy.BounceReport{Diagnostic: "the rcpt said: user unknown"}, "onhold", false},
		{"nothing at all", policy.BounceReport{}, event.CategoryUndefined, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Classify(&tt.report)
			if got.Category != tt.category || got.Hard != tt.hard {
				t.Errorf("Classify = %+v (%s), want %s hard=%v", got, r.Explain(&tt.report), tt.category, tt.hard)
			}
		})
	}
}

func TestShippedRules(t *testing.T) {
	r := loadTestRules(t)
	tests := []struct {
		reply    *reply.Reply
		stage    policy.Stage
		category event.Category
		hard     bool
	}{
		{reply.New(550, "5.1.1", "The email account that you tried to reach does not exist."), policy.StageRcpt, "userunknown", true},
		{reply.New(550, "", "User unknown"), policy.StageRcpt, "userunknown", true},
		{reply.New(550, "", "User unknown"), policy.StageData, "filtered", false},
		{reply.New(452, "4.2.2", "The recipient's inbox is out of storage space."), policy.StageRcpt, "mailboxfull", false},
		{reply.New(421, "4.7.28", "Gmail has detected an unusual rate of unsolicited mail"), policy.StageMail, "blocked", false},
		{reply.New(550, "5.7.26", "Unauthenticated email from example.org is not accepted due to domain's DMARC policy."), policy.StageData, "authfailure", false},
		{reply.New(554, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"), policy.StageRcpt, "blocked", false},
		{reply.New(550, "5.7.1", "Relaying denied"), policy.StageRcpt, "norelaying", false},
		{reply.New(552, "5.3.4", "Message size exceeds fixed limit"), policy.StageData, "mesgtoobig", false},
		{reply.New(421, "", "Too many connections from your IP"), policy.StageConnect, "toomanyconn", false},
		{reply.New(550, "5.7.25", "The IP address sending this message does not have a PTR record setup"), policy.StageRcpt, "requireptr", false},
		{reply.New(250, "2.0.0", "OK"), policy.StageData, "delivered", false},
		{reply.New(530, "5.7.0", "Must issue a STARTTLS command first"), policy.StageMail, "failedstarttls", false},
	}
	for _, tt := range tests {
		t.Run(tt.reply.String(), func(t *testing.T) {
			got := r.ClassifyAttempt(&policy.Attempt{Stage: tt.stage, Reply: tt.reply})
			if got.Category != tt.category || got.Hard != tt.hard {
				t.Errorf("ClassifyAttempt(%s) = %+v, want %s hard=%v", tt.stage, got, tt.category, tt.hard)
			}
			if tt.stage == policy.StageRcpt || tt.reply.Status.Class == 2 {
				return
			}
			if got := r.ClassifyReply(tt.reply); got.Category != tt.category {
				t.Errorf("ClassifyReply = %+v, want %s", got, tt.category)
			}
		})
	}
	if got := r.ClassifyReply(nil); got.Category != event.CategoryUndefined {
		t.Errorf("ClassifyReply(nil) = %+v", got)
	}
}

func TestExplain(t *testing.T) {
	r, err := luaRules(t, semanticsRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		report policy.BounceReport
		want   string
	}{
		{policy.BounceReport{Status: "4.2.2"}, "rule 3 (mailboxfull): status 4.2.2"},
		{policy.BounceReport{Diagnostic: "host x not found"}, `rule 6 (hostunknown): text "host … not found"`},
		{policy.BounceReport{Kind: "arf"}, "rule 1 (feedback): kind arf"},
		{policy.BounceReport{ReplyCode: 554, Diagnostic: "go away"}, "rule 8 (blocked): reply 554"},
		{policy.BounceReport{Diagnostic: "new words"}, "no rule (onhold)"},
	}
	for _, tt := range tests {
		if got := r.Explain(&tt.report); got != tt.want {
			t.Errorf("Explain(%+v) = %q, want %q", tt.report, got, tt.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	frags := []string{"he", "she", "his", "hers", "mail box", "é"}
	m := newMatcher(frags)
	tests := []struct {
		text string
		want []string
	}{
		{"USHERS", []string{"he", "she", "hers"}},
		{"this", []string{"his"}},
		{"MAIL\tBOX full, café", []string{"mail box", "é"}},
		{"", nil},
		{"xyz", nil},
	}
	for _, tt := range tests {
		found := make([]uint64, 1)
		m.scan(tt.text, found)
		var got []string
		for i, f := range frags {
			if has(found, i) {
				got = append(got, f)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("scan(%q) found %v, want %v", tt.text, got, tt.want)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	r := loadTestRules(b)
	rep := &policy.BounceReport{Kind: KindDSN, Action: "failed", Status: "5.0.0", ReplyCode: 550,
		Diagnostic: "550 <alice@receiver.example>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"}
	b.ReportAllocs()
	for b.Loop() {
		r.Classify(rep)
	}
}

func BenchmarkClassifyReply(b *testing.B) {
	r := loadTestRules(b)
	rp := reply.New(421, "4.7.0", "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes")
	b.ReportAllocs()
	for b.Loop() {
		r.ClassifyReply(rp)
	}
}

func BenchmarkLoadRulesFile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadRulesFile(rulesFile); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range []string{"5.1.1", "4.7.28", "2.0.0", "5.7.509", "3.1.1", "5.1", "5.1.1.1", "5..1", "5.1234.1", "x.1.1", "", "5.1.", ".1.1"} {
		want, wantOK := reply.ParseStatus(s)
		got, ok := parseStatus(s)
		if got != want || ok != wantOK {
			t.Errorf("parseStatus(%q) = %v, %v; reply.ParseStatus says %v, %v", s, got, ok, want, wantOK)
		}
	}
}
