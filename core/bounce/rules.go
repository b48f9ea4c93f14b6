package bounce

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/event"
	"corriere/core/luadata"
	"corriere/core/policy"
	"corriere/core/reply"
)

// Rules is a compiled bounce classification table (rules/bounces.lua). It
// is immutable once built and safe for concurrent use.
type Rules struct {
	rules []rule
	m     *matcher
	// commandIDs maps fragment ids of command phrases to their command.
	commandIDs []commandFragment
	nfrag      int
}

type commandFragment struct {
	id      int
	command string
}

// hardness says when a rule's category means "do not mail again".
type hardness uint8

const (
	soft          hardness = iota
	hard                   // always
	hardPermanent          // only when the failure is permanent (5xx)
)

type rule struct {
	category event.Category
	hard     hardness
	all      bool // every test must succeed, not just one
	text     []textPattern
	unless   []textPattern
	status   []statusPattern
	reply    []replyPattern
	kind     []string
	action   []string
	command  []string
	host     []string // domain suffixes, lower case
}

// textPattern is one or more fragments that must occur in this order.
type textPattern struct {
	ids   []int
	frags []string
}

// statusPattern is an enhanced status code whose parts may be wildcards
// (-1).
type statusPattern [3]int

func (p statusPattern) match(st reply.Status) bool {
	return (p[0] < 0 || p[0] == st.Class) && (p[1] < 0 || p[1] == st.Subject) && (p[2] < 0 || p[2] == st.Detail)
}

// replyPattern matches reply codes from lo to hi inclusive.
type replyPattern struct{ lo, hi int }

// RulesFromLua decodes the table returned by rules/bounces.lua. The
// errors name the rule and the field at fault, for example
// "bounce rules: rule 12: category missing".
func RulesFromLua(v lua.LValue) (*Rules, error) {
	return decodeRules(v, "bounce rules")
}

// LoadRulesFile runs a rules file once in a fresh Lua sandbox (see
// core/luadata: no file access, no code loading, bounded string functions,
// stopped after luadata.DefaultTimeout) and decodes the table it returns.
// A file that cannot compile or run is an error wrapping a *luadata.Error
// at the line at fault; a rule that cannot be decoded is named with its
// number, after the file's path.
func LoadRulesFile(path string) (*Rules, error) {
	t, err := luadata.LoadFile(path, luadata.Options{})
	if err != nil {
		return nil, fmt.Errorf("bounce: load rules: %w", err)
	}
	return decodeRules(t, path)
}

// ruleFields are the keys a rule table may have.
var ruleFields = map[string]bool{
	"category": true, "hard": true, "text": true, "unless": true, "status": true, "reply": true,
	"kind": true, "action": true, "command": true, "all": true, "host": true,
}

// decodeRules builds Rules from a Lua value; source prefixes the errors.
func decodeRules(v lua.LValue, source string) (*Rules, error) {
	tbl, ok := v.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s: must return a table of rules, got %s", source, v.Type())
	}
	b := &rulesBuilder{ids: map[string]int{}}
	n := tbl.Len()
	var errs []error
	tbl.ForEach(func(k, _ lua.LValue) {
		if num, ok := k.(lua.LNumber); !ok || int(num) < 1 || int(num) > n || float64(int(num)) != float64(num) {
			errs = append(errs, fmt.Errorf("%s: unexpected key %s: the rules must be a list", source, luaString(k)))
		}
	})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	rules := make([]rule, 0, n)
	for i := 1; i <= n; i++ {
		r, err := b.rule(tbl.RawGetInt(i))
		if err != nil {
			return nil, fmt.Errorf("%s: rule %d%s: %w", source, i, ruleName(tbl.RawGetInt(i)), err)
		}
		rules = append(rules, r)
	}
	out := &Rules{rules: rules}
	for _, c := range commands {
		out.commandIDs = append(out.commandIDs, commandFragment{id: b.id(c.phrase), command: c.command})
	}
	out.m = newMatcher(b.frags)
	out.nfrag = len(b.frags)
	return out, nil
}

// ruleName returns " (category)" for a rule table that has a category, to
// make errors easier to place.
func ruleName(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		if s, ok := t.RawGetString("category").(lua.LString); ok && s != "" {
			return " (" + string(s) + ")"
		}
	}
	return ""
}

func luaString(v lua.LValue) string {
	if s, ok := v.(lua.LString); ok {
		return strconv.Quote(string(s))
	}
	return v.String()
}

type rulesBuilder struct {
	frags []string
	ids   map[string]int
}

// id returns the fragment id of a lower-cased fragment, adding it.
func (b *rulesBuilder) id(frag string) int {
	if id, ok := b.ids[frag]; ok {
		return id
	}
	b.ids[frag] = len(b.frags)
	b.frags = append(b.frags, frag)
	return len(b.frags) - 1
}

func (b *rulesBuilder) rule(v lua.LValue) (rule, error) {
	t, ok := v.(*lua.LTable)
	if !ok {
		return rule{}, fmt.Errorf("must be a table, got %s", v.Type())
	}
	var r rule
	var err error
	var keys []string
	t.ForEach(func(k, _ lua.LValue) {
		s, ok := k.(lua.LString)
		if !ok || !ruleFields[string(s)] {
			keys = append(keys, luaString(k))
		}
	})
	if len(keys) > 0 {
		sort.Strings(keys)
		return rule{}, fmt.Errorf("unknown field %s (fields are category, hard, all, text, unless, status, "+
			"reply, kind, action, command, host)", keys[0])
	}
	switch c := t.RawGetString("category").(type) {
	case *lua.LNilType:
		return rule{}, errors.New("category missing")
	case lua.LString:
		cat, err := event.ParseCategory(string(c))
		if err != nil {
			return rule{}, err
		}
		r.category = cat
	default:
		return rule{}, fmt.Errorf("category must be a string, got %s", c.Type())
	}
	switch h := t.RawGetString("hard").(type) {
	case *lua.LNilType:
	case lua.LBool:
		if h {
			r.hard = hard
		}
	case lua.LString:
		if h != "permanent" {
			return rule{}, fmt.Errorf("hard must be true, false or \"permanent\", got %q", string(h))
		}
		r.hard = hardPermanent
	default:
		return rule{}, fmt.Errorf("hard must be true, false or \"permanent\", got %s", h.Type())
	}
	switch a := t.RawGetString("all").(type) {
	case *lua.LNilType:
	case lua.LBool:
		r.all = bool(a)
	default:
		return rule{}, fmt.Errorf("all must be true or false, got %s", a.Type())
	}
	if r.text, err = b.texts(t, "text"); err != nil {
		return rule{}, err
	}
	if r.unless, err = b.texts(t, "unless"); err != nil {
		return rule{}, err
	}
	statuses, err := stringList(t, "status")
	if err != nil {
		return rule{}, err
	}
	for i, s := range statuses {
		p, ok := parseStatusPattern(s)
		if !ok {
			return rule{}, fmt.Errorf("status %d: %q is not an enhanced status code (write 5.1.1, 5.7.* or *.1.1)", i+1, s)
		}
		r.status = append(r.status, p)
	}
	if r.reply, err = replyList(t); err != nil {
		return rule{}, err
	}
	if r.kind, err = wordList(t, "kind", []string{KindDSN, KindText, KindARF, KindAutoreply, "smtp"}); err != nil {
		return rule{}, err
	}
	if r.action, err = wordList(t, "action", nil); err != nil {
		return rule{}, err
	}
	commandWords := []string{"connect", "helo", "ehlo", "starttls", "mail", "rcpt", "data", "none"}
	if r.command, err = wordList(t, "command", commandWords); err != nil {
		return rule{}, err
	}
	if r.host, err = wordList(t, "host", nil); err != nil {
		return rule{}, err
	}
	for i, h := range r.host {
		h = strings.TrimPrefix(h, ".")
		if h == "" || strings.ContainsAny(h, " @/") {
			return rule{}, fmt.Errorf("host %d: %q is not a domain (write \"icloud.com\")", i+1, r.host[i])
		}
		r.host[i] = h
	}
	return r, nil
}

// texts decodes a list of text patterns: each a string, or a list of
// strings that must occur in that order.
func (b *rulesBuilder) texts(t *lua.LTable, field string) ([]textPattern, error) {
	v := t.RawGetString(field)
	if v == lua.LNil {
		return nil, nil
	}
	list, ok := v.(*lua.LTable)
	if !ok {
		if s, ok := v.(lua.LString); ok {
			list = &lua.LTable{}
			list.Append(s)
		} else {
			return nil, fmt.Errorf("%s must be a list of strings, got %s", field, v.Type())
		}
	}
	var out []textPattern
	for i := 1; i <= list.Len(); i++ {
		var frags []string
		switch e := list.RawGetInt(i).(type) {
		case lua.LString:
			frags = []string{string(e)}
		case *lua.LTable:
			for j := 1; j <= e.Len(); j++ {
				s, ok := e.RawGetInt(j).(lua.LString)
				if !ok {
					return nil, fmt.Errorf("%s %d: fragment %d must be a string", field, i, j)
				}
				frags = append(frags, string(s))
			}
			if len(frags) == 0 {
				return nil, fmt.Errorf("%s %d: empty list of fragments", field, i)
			}
		default:
			return nil, fmt.Errorf("%s %d: must be a string or a list of strings, got %s", field, i, e.Type())
		}
		var p textPattern
		for _, f := range frags {
			f = strings.ToLower(f)
			if strings.TrimSpace(f) == "" {
				return nil, fmt.Errorf("%s %d: empty fragment", field, i)
			}
			p.ids = append(p.ids, b.id(f))
			p.frags = append(p.frags, f)
		}
		out = append(out, p)
	}
	return out, nil
}

// stringList decodes a string or a list of strings.
func stringList(t *lua.LTable, field string) ([]string, error) {
	v := t.RawGetString(field)
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LString:
		return []string{string(v)}, nil
	case *lua.LTable:
		var out []string
		for i := 1; i <= v.Len(); i++ {
			s, ok := v.RawGetInt(i).(lua.LString)
			if !ok {
				return nil, fmt.Errorf("%s %d: must be a string, got %s", field, i, v.RawGetInt(i).Type())
			}
			out = append(out, string(s))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s must be a string or a list of strings, got %s", field, v.Type())
}

// wordList decodes a list of lower-case words, checked against allowed
// when it is not nil.
func wordList(t *lua.LTable, field string, allowed []string) ([]string, error) {
	words, err := stringList(t, field)
	if err != nil {
		return nil, err
	}
	for i, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		if w == "" {
			return nil, fmt.Errorf("%s %d: empty", field, i+1)
		}
		if allowed != nil && !contains(allowed, w) {
			return nil, fmt.Errorf("%s %d: %q is not one of %s", field, i+1, w, strings.Join(allowed, ", "))
		}
		if w == "ehlo" {
			w = "helo"
		}
		words[i] = w
	}
	return words, nil
}

// replyList decodes reply codes: numbers (550) or patterns ("55x", "4xx").
func replyList(t *lua.LTable) ([]replyPattern, error) {
	v := t.RawGetString("reply")
	var items []lua.LValue
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case *lua.LTable:
		for i := 1; i <= v.Len(); i++ {
			items = append(items, v.RawGetInt(i))
		}
	default:
		items = []lua.LValue{v}
	}
	var out []replyPattern
	for i, it := range items {
		s := strings.ToLower(strings.TrimSpace(it.String()))
		if len(s) != 3 || s[0] < '2' || s[0] > '5' {
			return nil, fmt.Errorf("reply %d: %q is not a reply code (write 550, \"55x\" or \"5xx\")", i+1, s)
		}
		lo, hi := 0, 0
		wild := false
		for j := 0; j < 3; j++ {
			switch c := s[j]; {
			case c == 'x' && j > 0:
				wild = true
				lo, hi = lo*10, hi*10+9
			case isDigit(c) && !wild:
				lo, hi = lo*10+int(c-'0'), hi*10+int(c-'0')
			default:
				return nil, fmt.Errorf("reply %d: %q is not a reply code (write 550, \"55x\" or \"5xx\")", i+1, s)
			}
		}
		out = append(out, replyPattern{lo, hi})
	}
	return out, nil
}

// parseStatusPattern parses "5.1.1", "5.7.*" or "*.1.1".
func parseStatusPattern(s string) (statusPattern, bool) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return statusPattern{}, false
	}
	var p statusPattern
	for i, part := range parts {
		if part == "*" {
			p[i] = -1
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 999 || (i == 0 && n != 2 && n != 4 && n != 5) {
			return statusPattern{}, false
		}
		p[i] = n
	}
	return p, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// facts is what Classify knows about one report, computed once.
type facts struct {
	text      string // the diagnostic as given
	status    reply.Status
	hasStatus bool
	code      int
	kind      string
	action    string
	command   string // "rcpt", "data"... or "none"
	domain    string // the recipient's domain
	remote    string // the host that reported the failure
}

// Classify decides the category of one report and whether it is hard. The
// rules are tried in order and the first that matches decides; when none
// does, the category is "onhold" (a diagnostic nobody recognises) or
// "undefined" (no diagnostic at all), both soft. Classify is safe for
// concurrent use and does not allocate for rule sets of up to 2048 text
// fragments.
func (r *Rules) Classify(b *policy.BounceReport) policy.BounceVerdict {
	f := reportFacts(b)
	v, _ := r.decide(&f)
	return v
}

// Explain says which rule decides b and why, for whoever edits the rules:
// for example `rule 12 (userunknown): status 5.1.1` or `rule 40
// (blocked): text "blocked using"`, counting rules from 1 in file order,
// or `no rule (onhold)`.
func (r *Rules) Explain(b *policy.BounceReport) string {
	f := reportFacts(b)
	v, i := r.decide(&f)
	if i < 0 {
		return "no rule (" + string(v.Category) + ")"
	}
	var buf [32]uint64
	found := r.scan(&f, buf[:])
	return fmt.Sprintf("rule %d (%s): %s", i+1, v.Category, r.rules[i].why(&f, found))
}

// why names the test of a matching rule that succeeded.
func (ru *rule) why(f *facts, found []uint64) string {
	var parts []string
	if f.hasStatus && anyStatus(ru.status, f.status) {
		parts = append(parts, "status "+f.status.String())
	}
	if f.code > 0 && anyReply(ru.reply, f.code) {
		parts = append(parts, "reply "+strconv.Itoa(f.code))
	}
	for i := range ru.text {
		if ru.text[i].match(f, found) {
			parts = append(parts, "text "+strconv.Quote(strings.Join(ru.text[i].frags, "…")))
			break
		}
	}
	if len(parts) == 0 {
		var conds []string
		for _, c := range []struct {
			name string
			vals []string
			val  string
		}{{"kind", ru.kind, f.kind}, {"action", ru.action, f.action}, {"command", ru.command, f.command}} {
			if len(c.vals) > 0 {
				conds = append(conds, c.name+" "+c.val)
			}
		}
		return strings.Join(conds, ", ")
	}
	return strings.Join(parts, ", ")
}

// ClassifyReply classifies a synchronous SMTP reply with the same rules,
// as a report of kind "smtp" whose diagnostic is the reply text. The SMTP
// command it answered is unknown; ClassifyAttempt knows it.
func (r *Rules) ClassifyReply(rp *reply.Reply) policy.BounceVerdict {
	f := replyFacts(rp, "")
	v, _ := r.decide(&f)
	return v
}

// ClassifyAttempt classifies the reply of a delivery attempt, knowing the
// stage of the dialogue it answered (so that "550 User unknown" after RCPT
// TO is the directory, and after DATA a filter).
func (r *Rules) ClassifyAttempt(a *policy.Attempt) policy.BounceVerdict {
	f := replyFacts(a.Reply, stageCommand[a.Stage])
	f.domain, f.remote = domainOf(a.Recipient), hostOf(a.MXHost)
	v, _ := r.decide(&f)
	return v
}

// stageCommand names the command rules see for each stage of a delivery.
var stageCommand = map[policy.Stage]string{
	policy.StageConnect: "connect",
	policy.StageHelo:    "helo",
	policy.StageTLS:     "starttls",
	policy.StageMail:    "mail",
	policy.StageRcpt:    "rcpt",
	policy.StageData:    "data",
}

func reportFacts(b *policy.BounceReport) facts {
	f := facts{text: b.Diagnostic, kind: b.Kind, action: b.Action, code: b.ReplyCode,
		domain: domainOf(b.Recipient), remote: hostOf(b.RemoteMTA)}
	if !isLowerASCII(f.action) {
		f.action = strings.ToLower(f.action)
	}
	f.status, f.hasStatus = parseStatus(b.Status)
	return f
}

// parseStatus parses an enhanced status code like reply.ParseStatus, but
// without allocating: it runs for every report classified.
func parseStatus(s string) (reply.Status, bool) {
	var n [3]int
	part, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && digits > 0 && part < 2:
			part++
			digits = 0
		case isDigit(c) && digits < 3:
			n[part] = n[part]*10 + int(c-'0')
			digits++
		default:
			return reply.Status{}, false
		}
	}
	if part != 2 || digits == 0 || (n[0] != 2 && n[0] != 4 && n[0] != 5) {
		return reply.Status{}, false
	}
	return reply.Status{Class: n[0], Subject: n[1], Detail: n[2]}, true
}

func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

func replyFacts(rp *reply.Reply, command string) facts {
	if rp == nil {
		return facts{kind: "smtp", command: command}
	}
	return facts{text: rp.Text, kind: "smtp", code: rp.Code, status: rp.Status, hasStatus: !rp.Status.IsZero(), command: command}
}

// decide classifies f and returns the index of the deciding rule, or -1
// when none matched.
func (r *Rules) decide(f *facts) (policy.BounceVerdict, int) {
	// The set of fragments found in the text: on the stack for rule sets
	// of up to 2048 fragments.
	var buf [32]uint64
	found := r.scan(f, buf[:])
	for i := range r.rules {
		if r.rules[i].matches(f, found) {
			return policy.BounceVerdict{Category: r.rules[i].category, Hard: r.rules[i].isHard(f)}, i
		}
	}
	if strings.TrimSpace(f.text) != "" {
		return policy.BounceVerdict{Category: event.CategoryOnHold}, -1
	}
	return policy.BounceVerdict{Category: event.CategoryUndefined}, -1
}

// scan finds the fragments in f's text, in buf when it is large enough,
// and the SMTP command the text names.
func (r *Rules) scan(f *facts, buf []uint64) []uint64 {
	words := (r.nfrag + 63) / 64
	var found []uint64
	if words <= len(buf) {
		found = buf[:words]
	} else {
		found = make([]uint64, words)
	}
	r.m.scan(f.text, found)
	if f.command == "" {
		f.command = "none"
		for _, c := range r.commandIDs {
			if has(found, c.id) {
				f.command = commandWord(c.command)
				break
			}
		}
		if f.command == "none" {
			f.command = bareCommand(f.text)
		}
	}
	return found
}

// bareCommands are the commands of a mail transaction as servers and
// MTAs quote them, in upper case, from the earliest to the latest. HELO
// and STARTTLS are left out: bounces name them in passing ("while
// performing the HELO handshake") more often than as the failed step.
var bareCommands = []struct{ word, command string }{
	{"MAIL F", "mail"}, {"RCPT", "rcpt"}, {"DATA", "data"},
}

// bareCommand returns the command word of the latest SMTP command that text
// names in upper case as a word of its own ("Error following RCPT
// command", "<<< 550 ... >>> DATA"), or "none". The latest wins: a failure
// quoted with the dialogue that led to it came at its last step.
func bareCommand(text string) string {
	for i := len(bareCommands) - 1; i >= 0; i-- {
		w := bareCommands[i].word
		for from := 0; from+len(w) <= len(text); {
			j := strings.Index(text[from:], w)
			if j < 0 {
				break
			}
			at := from + j
			end := at + len(w)
			if (at == 0 || !isWordByte(text[at-1])) && (end == len(text) || !isWordByte(text[end]) || w == "MAIL F") {
				return bareCommands[i].command
			}
			from = at + 1
		}
	}
	return "none"
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '@' || c == '`'
}

// commandWord turns a command as bounces name it into the word rules use.
func commandWord(c string) string {
	switch c {
	case "RCPT TO":
		return "rcpt"
	case "MAIL FROM":
		return "mail"
	case "DATA", "end of DATA":
		return "data"
	case "CONNECT":
		return "connect"
	case "EHLO", "HELO":
		return "helo"
	case "STARTTLS":
		return "starttls"
	}
	return ""
}

func (ru *rule) matches(f *facts, found []uint64) bool {
	if len(ru.kind) > 0 && !contains(ru.kind, f.kind) {
		return false
	}
	if len(ru.action) > 0 && !contains(ru.action, f.action) {
		return false
	}
	if len(ru.command) > 0 && !contains(ru.command, f.command) {
		return false
	}
	if len(ru.host) > 0 && !anyHost(ru.host, f) {
		return false
	}
	for i := range ru.unless {
		if ru.unless[i].match(f, found) {
			return false
		}
	}
	tests := 0
	passed := 0
	if len(ru.status) > 0 {
		tests++
		if f.hasStatus && anyStatus(ru.status, f.status) {
			passed++
		}
	}
	if len(ru.reply) > 0 {
		tests++
		if f.code > 0 && anyReply(ru.reply, f.code) {
			passed++
		}
	}
	if len(ru.text) > 0 {
		tests++
		for i := range ru.text {
			if ru.text[i].match(f, found) {
				passed++
				break
			}
		}
	}
	if ru.all {
		return passed == tests
	}
	return tests == 0 || passed > 0
}

// domainOf returns the domain of an address, or "".
func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return strings.TrimRight(addr[at+1:], ">. ")
	}
	return ""
}

// anyHost reports whether the recipient's domain or the reporting host is
// one of hosts or under one of them.
func anyHost(hosts []string, f *facts) bool {
	for _, h := range hosts {
		if underDomain(f.domain, h) || underDomain(f.remote, h) {
			return true
		}
	}
	return false
}

// underDomain reports whether name is domain or a name under it, ignoring
// ASCII case.
func underDomain(name, domain string) bool {
	if len(name) < len(domain) || !strings.EqualFold(name[len(name)-len(domain):], domain) {
		return false
	}
	return len(name) == len(domain) || name[len(name)-len(domain)-1] == '.'
}

func anyStatus(ps []statusPattern, st reply.Status) bool {
	for _, p := range ps {
		if p.match(st) {
			return true
		}
	}
	return false
}

func anyReply(ps []replyPattern, code int) bool {
	for _, p := range ps {
		if code >= p.lo && code <= p.hi {
			return true
		}
	}
	return false
}

// match reports whether every fragment of p occurs in the text, in order.
func (p *textPattern) match(f *facts, found []uint64) bool {
	for _, id := range p.ids {
		if !has(found, id) {
			return false
		}
	}
	if len(p.ids) == 1 {
		return true
	}
	at := 0
	for _, frag := range p.frags {
		end := indexFold(f.text, frag, at)
		if end < 0 {
			return false
		}
		at = end
	}
	return true
}

// indexFold finds the lower-case fragment frag in text at or after from,
// as the matcher does (ASCII case folded, a run of white space in text
// matching a space in frag), and returns the offset just past it, or -1.
func indexFold(text, frag string, from int) int {
	for start := from; start < len(text); start++ {
		i, j := start, 0
		for j < len(frag) && i < len(text) {
			c := text[i]
			if frag[j] == ' ' && isSpace(c) {
				for i < len(text) && isSpace(text[i]) {
					i++
				}
				j++
				continue
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != frag[j] {
				break
			}
			i++
			j++
		}
		if j == len(frag) {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isHard applies the rule's hardness to a report: "permanent" rules are
// hard only when the failure is not temporary.
func (ru *rule) isHard(f *facts) bool {
	switch ru.hard {
	case hard:
		return true
	case hardPermanent:
		return !temporary(f)
	}
	return false
}

// temporary reports whether a report describes a transient failure: a 4.x.x
// status, a 4xx reply, or a delivery still being attempted.
func temporary(f *facts) bool {
	switch {
	case f.hasStatus:
		return f.status.Class == 4
	case f.code > 0:
		return f.code/100 == 4
	}
	return f.action == "delayed"
}
