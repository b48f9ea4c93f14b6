package dkim

import (
	"crypto"
	"fmt"
	"log/slog"
	"maps"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"

	"corriere/core/address"
	"corriere/core/luadata"
	"corriere/core/tenant"
)

// FileName is the name of the policy file, in the rules directory, that says
// which keys sign which mail.
const FileName = "dkim.lua"

// defaultHeaders are the fields signed when present, used when rules/dkim.lua
// gives no headers list: what a reader sees (From, Subject, the addresses,
// Date), what threads a conversation, what decides how the body is shown
// (MIME), and the list and feedback fields that mailbox providers act on
// (one-click unsubscribe, Gmail's Feedback-ID). Received and Return-Path are
// never signed: relays add them.
var defaultHeaders = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Id", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Help", "List-Subscribe", "List-Post",
	"List-Owner", "List-Archive", "Feedback-ID",
}

// defaultOversign are the fields signed once more than they appear, used when
// rules/dkim.lua gives no oversign list: the ones a replayed copy could add
// to change what the reader sees or what an unsubscribe click does, since
// many clients show the topmost copy while a signature covers the bottom one.
// Date and Message-ID are not among them because some receivers add them to
// mail that lacks them.
var defaultOversign = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe",
	"List-Unsubscribe-Post",
}

// Rules is rules/dkim.lua with its keys read: which domain signs which
// message, with which keys and header fields. A Rules is immutable and safe
// for concurrent use.
type Rules struct {
	// File is the path rules/dkim.lua was read from.
	File string

	fields   []headerField
	platform *domain
	domains  map[string]*domain
	tenants  map[string]*domain
	// tenantDir, when set, holds tenants to their sender_domains: a From:
	// domain a message's tenant may not use is never signed.
	tenantDir tenant.Directory
}

// headerField is one entry of the signed header list.
type headerField struct {
	name     string // as written in rules/dkim.lua, for h=
	canon    string // canonical MIME key, to count occurrences
	oversign bool
}

// domain is one signing domain (d=) with its keys.
type domain struct {
	name       string
	subdomains bool
	tenants    []string // when set, only these tenants' From: may use it
	keys       []*key
	active     []*key // the keys that sign, RSA first
}

// key is one private key with its selector.
type key struct {
	selector  string
	algorithm string
	file      string
	signer    crypto.Signer
	line      int // where rules/dkim.lua names it
}

// Load reads FileName in rulesDir and every key file it names. The file
// runs in the sandbox of core/luadata, under its default deadline. A
// missing rules file is an error wrapping fs.ErrNotExist; every other
// problem is a *luadata.Error with the line of rules/dkim.lua at fault. log
// receives a warning for each key file that group or others may read; nil
// discards them.
func Load(rulesDir string, log *slog.Logger) (*Rules, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	file := filepath.Join(rulesDir, FileName)
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	chunk, err := luadata.Compile(file, src)
	if err != nil {
		return nil, err
	}
	t, err := luadata.Run(chunk, luadata.Options{})
	if err != nil {
		return nil, err
	}
	lines, retLine := indexLines(chunk.Stmts)
	rd := &reader{file: file, dir: rulesDir, lines: lines, retLine: retLine, log: log}
	return rd.rules(t)
}

// path names a value in the returned table, as `domains["a.example"].keys[1]`.
type path []string

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// key returns the path of field name of the table at p.
func (p path) key(name string) path {
	if identifier.MatchString(name) {
		return append(p[:len(p):len(p)], "."+name)
	}
	return append(p[:len(p):len(p)], "["+strconv.Quote(name)+"]")
}

// index returns the path of element i of the list at p.
func (p path) index(i int) path {
	return append(p[:len(p):len(p)], "["+strconv.Itoa(i)+"]")
}

func (p path) String() string {
	return strings.TrimPrefix(strings.Join(p, ""), ".")
}

// indexLines maps the path of every field of the table that the file
// returns, written as a table constructor, to its line. retLine is the line
// of the return statement.
func indexLines(chunk []ast.Stmt) (lines map[string]int, retLine int) {
	lines = map[string]int{}
	if len(chunk) == 0 {
		return lines, 0
	}
	ret, ok := chunk[len(chunk)-1].(*ast.ReturnStmt)
	if !ok {
		return lines, 0
	}
	if len(ret.Exprs) == 1 {
		if t, ok := ret.Exprs[0].(*ast.TableExpr); ok {
			indexTable(lines, nil, t)
		}
	}
	return lines, ret.Line()
}

func indexTable(lines map[string]int, p path, t *ast.TableExpr) {
	n := 0
	for _, f := range t.Fields {
		var fp path
		switch k := f.Key.(type) {
		case nil:
			n++
			fp = p.index(n)
		case *ast.StringExpr:
			fp = p.key(k.Value)
		case *ast.NumberExpr:
			i, err := strconv.Atoi(k.Value)
			if err != nil {
				continue
			}
			fp = p.index(i)
		default:
			continue
		}
		line := f.Value.Line()
		if f.Key != nil && f.Key.Line() > 0 {
			line = f.Key.Line()
		}
		lines[fp.String()] = line
		if sub, ok := f.Value.(*ast.TableExpr); ok {
			indexTable(lines, fp, sub)
		}
	}
}

// reader turns the returned table into Rules, checking every value.
type reader struct {
	file    string
	dir     string
	lines   map[string]int
	retLine int
	log     *slog.Logger
}

// line returns the line of the value at p, or of its closest ancestor whose
// line is known.
func (rd *reader) line(p path) int {
	for i := len(p); i > 0; i-- {
		if l, ok := rd.lines[p[:i].String()]; ok {
			return l
		}
	}
	return rd.retLine
}

// errf returns a *luadata.Error at the line of p, prefixed with p.
func (rd *reader) errf(p path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if len(p) > 0 {
		msg = p.String() + ": " + msg
	}
	return &luadata.Error{File: rd.file, Line: rd.line(p), Msg: msg}
}

// sortedKeys returns the string keys of t in order, refusing any key not in
// known.
func (rd *reader) sortedKeys(p path, t *lua.LTable, known ...string) ([]string, error) {
	var keys []string
	var bad lua.LValue
	t.ForEach(func(k, _ lua.LValue) {
		s, ok := k.(lua.LString)
		if !ok || (known != nil && !slices.Contains(known, string(s))) {
			if bad == nil {
				bad = k
			}
			return
		}
		keys = append(keys, string(s))
	})
	if bad != nil {
		if s, ok := bad.(lua.LString); ok {
			return nil, rd.errf(p.key(string(s)), "unknown field (known: %s)", strings.Join(known, ", "))
		}
		return nil, rd.errf(p, "has a key %s that is not a name", bad)
	}
	sort.Strings(keys)
	return keys, nil
}

// table returns v as a table, or nil when v is nil.
func (rd *reader) table(p path, v lua.LValue) (*lua.LTable, error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case *lua.LTable:
		return v, nil
	default:
		return nil, rd.errf(p, "must be a table, not %s", v.Type())
	}
}

// str returns v as a non-empty string; ok is false when v is nil.
func (rd *reader) str(p path, v lua.LValue) (s string, ok bool, err error) {
	switch v := v.(type) {
	case *lua.LNilType:
		return "", false, nil
	case lua.LString:
		if v == "" {
			return "", false, rd.errf(p, "must not be empty")
		}
		return string(v), true, nil
	default:
		return "", false, rd.errf(p, "must be a string, not %s", v.Type())
	}
}

// list returns v as a list of non-empty strings; ok is false when v is nil.
func (rd *reader) list(p path, v lua.LValue) (out []string, ok bool, err error) {
	t, err := rd.table(p, v)
	if err != nil || t == nil {
		return nil, false, err
	}
	n := t.Len()
	count := 0
	t.ForEach(func(lua.LValue, lua.LValue) { count++ })
	if count != n {
		return nil, false, rd.errf(p, "must be a list like { \"a\", \"b\" }")
	}
	for i := 1; i <= n; i++ {
		s, _, err := rd.str(p.index(i), t.RawGetInt(i))
		if err != nil {
			return nil, false, err
		}
		out = append(out, s)
	}
	return out, true, nil
}

// domainName returns s normalised (lower-case A-labels, no final dot).
func (rd *reader) domainName(p path, s string) (string, error) {
	d, err := address.NormalizeDomain(s)
	if err != nil || strings.HasPrefix(d, "[") || !strings.Contains(d, ".") {
		return "", rd.errf(p, "%q is not a domain name", s)
	}
	return d, nil
}

var (
	fieldName = regexp.MustCompile(`^[!-9;-~]+$`)
	selector  = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

func (rd *reader) rules(t *lua.LTable) (*Rules, error) {
	if _, err := rd.sortedKeys(nil, t, "headers", "oversign", "platform", "domains", "tenants"); err != nil {
		return nil, err
	}
	r := &Rules{File: rd.file, domains: map[string]*domain{}, tenants: map[string]*domain{}}
	if err := rd.headerList(r, t); err != nil {
		return nil, err
	}

	dp := path{"domains"}
	domains, err := rd.table(dp, t.RawGetString("domains"))
	if err != nil {
		return nil, err
	}
	if domains != nil {
		names, err := rd.sortedKeys(dp, domains)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			p := dp.key(name)
			d, err := rd.domain(p, name, domains.RawGetString(name), "keys", "active", "subdomains", "tenants")
			if err != nil {
				return nil, err
			}
			if r.domains[d.name] != nil {
				return nil, rd.errf(p, "%s is listed twice", d.name)
			}
			r.domains[d.name] = d
		}
	}

	if name, ok, err := rd.str(path{"platform"}, t.RawGetString("platform")); err != nil {
		return nil, err
	} else if ok {
		p := path{"platform"}
		n, err := rd.domainName(p, name)
		if err != nil {
			return nil, err
		}
		if r.platform = r.domains[n]; r.platform == nil {
			return nil, rd.errf(p, "%q has no entry in domains", name)
		}
	}

	tp := path{"tenants"}
	tenants, err := rd.table(tp, t.RawGetString("tenants"))
	if err != nil {
		return nil, err
	}
	if tenants != nil {
		names, err := rd.sortedKeys(tp, tenants)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			d, err := rd.tenant(r, tp.key(name), name, tenants.RawGetString(name))
			if err != nil {
				return nil, err
			}
			r.tenants[name] = d
		}
	}
	return r, nil
}

// headerList reads headers and oversign into r.fields.
func (rd *reader) headerList(r *Rules, t *lua.LTable) error {
	headers, ok, err := rd.list(path{"headers"}, t.RawGetString("headers"))
	if err != nil {
		return err
	}
	if !ok {
		headers = defaultHeaders
	}
	oversign, ok, err := rd.list(path{"oversign"}, t.RawGetString("oversign"))
	if err != nil {
		return err
	}
	if !ok {
		oversign = defaultOversign
	}
	seen := map[string]int{}
	for _, group := range []struct {
		name  string
		names []string
		over  bool
	}{{"headers", headers, false}, {"oversign", oversign, true}} {
		for i, name := range group.names {
			p := path{group.name}.index(i + 1)
			if !fieldName.MatchString(name) {
				return rd.errf(p, "%q is not a header field name", name)
			}
			canon := textproto.CanonicalMIMEHeaderKey(name)
			if strings.EqualFold(canon, "DKIM-Signature") {
				return rd.errf(p, "DKIM-Signature cannot sign itself")
			}
			if j, dup := seen[canon]; dup {
				if !group.over || r.fields[j].oversign {
					return rd.errf(p, "%s is listed twice", name)
				}
				r.fields[j].oversign = true
				continue
			}
			seen[canon] = len(r.fields)
			r.fields = append(r.fields, headerField{name: name, canon: canon, oversign: group.over})
		}
	}
	if _, ok := seen["From"]; !ok {
		return rd.errf(path{"headers"}, "must include From: RFC 6376 requires it to be signed")
	}
	return nil
}

// domain reads one signing domain entry; known are the fields it may have.
func (rd *reader) domain(p path, name string, v lua.LValue, known ...string) (*domain, error) {
	t, err := rd.table(p, v)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, rd.errf(p, "must be a table")
	}
	if _, err := rd.sortedKeys(p, t, known...); err != nil {
		return nil, err
	}
	d := &domain{}
	if d.name, err = rd.domainName(p, name); err != nil {
		return nil, err
	}
	switch s := t.RawGetString("subdomains").(type) {
	case *lua.LNilType:
	case lua.LBool:
		d.subdomains = bool(s)
	default:
		return nil, rd.errf(p.key("subdomains"), "must be true or false")
	}
	var restricted bool
	if d.tenants, restricted, err = rd.list(p.key("tenants"), t.RawGetString("tenants")); err != nil {
		return nil, err
	} else if restricted && len(d.tenants) == 0 {
		return nil, rd.errf(p.key("tenants"), "empty: list the tenants that may sign as %s, or leave the field out to allow all", name)
	}

	kp := p.key("keys")
	keys, err := rd.table(kp, t.RawGetString("keys"))
	if err != nil {
		return nil, err
	}
	if keys == nil || keys.Len() == 0 {
		return nil, rd.errf(kp, "list at least one key: { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/...\" }")
	}
	for i := 1; i <= keys.Len(); i++ {
		k, err := rd.key(kp.index(i), keys.RawGetInt(i))
		if err != nil {
			return nil, err
		}
		for _, other := range d.keys {
			if strings.EqualFold(other.selector, k.selector) {
				return nil, rd.errf(kp.index(i).key("selector"), "selector %q is listed twice", k.selector)
			}
		}
		d.keys = append(d.keys, k)
	}

	ap := p.key("active")
	active, ok, err := rd.list(ap, t.RawGetString("active"))
	if err != nil {
		return nil, err
	}
	if !ok {
		for i, k := range d.keys {
			for _, other := range d.keys[:i] {
				if other.algorithm == k.algorithm {
					return nil, rd.errf(kp, "two %s keys (selectors %s and %s): say which signs with active = { ... }",
						k.algorithm, other.selector, k.selector)
				}
			}
		}
		d.active = slices.Clone(d.keys)
	}
	for i, s := range active {
		j := slices.IndexFunc(d.keys, func(k *key) bool { return strings.EqualFold(k.selector, s) })
		if j < 0 {
			return nil, rd.errf(ap.index(i+1), "selector %q is not among the keys", s)
		}
		if slices.Contains(d.active, d.keys[j]) {
			return nil, rd.errf(ap.index(i+1), "selector %q is listed twice", s)
		}
		d.active = append(d.active, d.keys[j])
	}
	if len(d.active) == 0 {
		return nil, rd.errf(ap, "no active selector: the domain would not sign")
	}
	// RSA on top: a receiver that knows RSA only finds its signature first.
	slices.SortStableFunc(d.active, func(a, b *key) int { return rsaFirst(a) - rsaFirst(b) })
	return d, nil
}

// rsaFirst ranks RSA keys before Ed25519 keys.
func rsaFirst(k *key) int {
	if k.algorithm == RSASHA256 {
		return 0
	}
	return 1
}

// key reads one key entry and the key file it names.
func (rd *reader) key(p path, v lua.LValue) (*key, error) {
	t, err := rd.table(p, v)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, rd.errf(p, "must be a table")
	}
	if _, err := rd.sortedKeys(p, t, "selector", "algorithm", "file"); err != nil {
		return nil, err
	}
	k := &key{line: rd.line(p)}
	var ok bool
	if k.selector, ok, err = rd.str(p.key("selector"), t.RawGetString("selector")); err != nil {
		return nil, err
	} else if !ok || !selector.MatchString(k.selector) {
		return nil, rd.errf(p.key("selector"), "want a selector name of letters, digits, - and .")
	}
	if k.algorithm, _, err = rd.str(p.key("algorithm"), t.RawGetString("algorithm")); err != nil {
		return nil, err
	} else if k.algorithm != RSASHA256 && k.algorithm != Ed25519SHA256 {
		return nil, rd.errf(p.key("algorithm"), "want %q or %q", RSASHA256, Ed25519SHA256)
	}
	fp := p.key("file")
	file, ok, err := rd.str(fp, t.RawGetString("file"))
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, rd.errf(fp, "missing: the path of the private key file, relative to %s", rd.dir)
	}
	k.file = file
	if !filepath.IsAbs(file) {
		k.file = filepath.Join(rd.dir, file)
	}
	signer, exposed, err := readKey(k.file)
	if err != nil {
		return nil, rd.errf(fp, "%s: %v", k.file, err)
	}
	if err := checkKey(signer, k.algorithm); err != nil {
		return nil, rd.errf(fp, "%s: %v", k.file, err)
	}
	at := fmt.Sprintf("%s:%d", rd.file, rd.line(fp))
	if exposed {
		warnOnce(rd.log, "exposed "+k.file, "dkim: private key file readable by group or others; chmod 600 it",
			"file", k.file, "at", at)
	}
	if isDemoKey(signer) {
		warnOnce(rd.log, "demo "+k.file, "dkim: a demo key is in use: its private half is public in Corriere's repository, so anyone can sign as this domain; make your own with corriere dkim keygen",
			"file", k.file, "at", at)
	}
	k.signer = signer
	return k, nil
}

// tenant reads one tenants entry: a reference to a domains entry, or a
// signing domain of the tenant's own.
func (rd *reader) tenant(r *Rules, p path, name string, v lua.LValue) (*domain, error) {
	t, err := rd.table(p, v)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, rd.errf(p, "must be a table")
	}
	dname, ok, err := rd.str(p.key("domain"), t.RawGetString("domain"))
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, rd.errf(p, "missing domain: the signing domain of the tenant's mail")
	}
	if t.RawGetString("keys") != lua.LNil {
		return rd.domain(p, dname, t, "domain", "keys", "active")
	}
	if _, err := rd.sortedKeys(p, t, "domain", "keys", "active"); err != nil {
		return nil, err
	}
	if t.RawGetString("active") != lua.LNil {
		return nil, rd.errf(p.key("active"), "only with keys of the tenant's own; the active selectors of %s are set in domains", dname)
	}
	n, err := rd.domainName(p.key("domain"), dname)
	if err != nil {
		return nil, err
	}
	d := r.domains[n]
	if d == nil {
		return nil, rd.errf(p.key("domain"), "%q has no entry in domains (or give the tenant keys of its own here)", dname)
	}
	if d.tenants != nil && !slices.Contains(d.tenants, name) {
		return nil, rd.errf(p.key("domain"), "the entry of %s in domains does not list tenant %q", n, name)
	}
	return d, nil
}

// KeyInfo describes one key of rules/dkim.lua.
type KeyInfo struct {
	// Domain is the signing domain (d=), Selector the key's selector.
	Domain, Selector string
	// Algorithm is RSASHA256 or Ed25519SHA256.
	Algorithm string
	// File is the key file as read.
	File string
	// Line is where rules/dkim.lua names the key.
	Line int
	// Active is true when the key signs; false while it waits in rotation.
	Active bool
	// Tenant is set when the key belongs to a tenant's own signing domain.
	Tenant string
	// Platform is true for the keys of the platform domain.
	Platform bool
	// RecordName and Record are the DNS TXT record that must publish the
	// key's public half.
	RecordName, Record string
}

// Keys lists every key: the domains entries by name, then the tenants' own
// entries by tenant, each in file order.
func (r *Rules) Keys() []KeyInfo {
	var out []KeyInfo
	add := func(d *domain, tenant string) {
		for _, k := range d.keys {
			rec, _ := Record(k.signer.Public()) // readKey returns only RSA and Ed25519 keys
			out = append(out, KeyInfo{
				Domain: d.name, Selector: k.selector, Algorithm: k.algorithm, File: k.file, Line: k.line,
				Active: slices.Contains(d.active, k), Tenant: tenant, Platform: d == r.platform,
				RecordName: k.selector + "._domainkey." + d.name + ".", Record: rec,
			})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.domains)) {
		add(r.domains[name], "")
	}
	for _, name := range slices.Sorted(maps.Keys(r.tenants)) {
		if d := r.tenants[name]; r.domains[d.name] != d {
			add(d, name)
		}
	}
	return out
}
