package dkim

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"corriere/core/extension"
	"corriere/core/luart"
	"corriere/core/plugin"
	"corriere/core/tenant"
	"corriere/core/testlib"
)

const oneKey = `return { domains = { ["shop.test"] = { keys = {
  { selector = "%s", algorithm = "ed25519-sha256", file = "keys/%s.pem" } } } } }`

func rulesWith(selector, keyName string) string {
	return strings.NewReplacer("%s", selector).Replace(strings.Replace(oneKey, "keys/%s", "keys/"+keyName, 1))
}

// provision makes the plugin the way the node does.
func provision(t *testing.T, dir string, logs *testlib.Buffer) *Plugin {
	t.Helper()
	p, err := plugin.New("dkim")
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := p.(*Plugin)
	if !ok {
		t.Fatalf("plugin dkim is a %T", p)
	}
	if err := pl.Provision(&extension.Context{RulesDir: dir, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}); err != nil {
		t.Fatal(err)
	}
	commit, err := pl.Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	return pl
}

func TestPluginProvision(t *testing.T) {
	var logs testlib.Buffer
	p := provision(t, rulesDir(t, rulesWith("e1", "ed1")), &logs)
	if p.StageOrder() != extension.SignOrder {
		t.Errorf("StageOrder = %d, want extension.SignOrder", p.StageOrder())
	}
	m := newMessage(t, testMessage, "")
	if err := p.Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !m.Header.Has("DKIM-Signature") {
		t.Fatal("not signed")
	}
	m = newMessage(t, strings.Replace(testMessage, "news@shop.test", "x@other.test", 1), "")
	if err := p.Process(context.Background(), m); err != nil || m.Header.Has("DKIM-Signature") {
		t.Fatalf("Process of a message without a key: err %v, signed %v", err, m.Header.Has("DKIM-Signature"))
	}
	if !strings.Contains(logs.String(), "no key for this message") || !strings.Contains(logs.String(), "msg_id=test-1") {
		t.Errorf("no debug line for the unsigned message:\n%s", logs.String())
	}
}

func TestPluginWithoutRulesFile(t *testing.T) {
	var logs testlib.Buffer
	p := provision(t, t.TempDir(), &logs)
	m := newMessage(t, testMessage, "")
	if err := p.Process(context.Background(), m); err != nil || m.Header.Has("DKIM-Signature") {
		t.Fatalf("Process without rules: err %v, signed %v", err, m.Header.Has("DKIM-Signature"))
	}
	if !strings.Contains(logs.String(), "messages leave unsigned") {
		t.Errorf("no log line says that nothing is signed:\n%s", logs.String())
	}
}

func TestPluginRefusesBrokenRulesAndConfig(t *testing.T) {
	p := new(Plugin)
	if err := p.Provision(&extension.Context{RulesDir: t.TempDir(), Config: map[string]any{"key": "x"}}); err == nil {
		t.Error("Provision accepted a configuration section")
	}
	tests := []struct {
		name, src, want string
	}{
		{"wrong type", "return { domains = 1 }", FileName + ":1: domains"},
		{"missing key file", "return { domains = { [\"shop.test\"] = { keys = {\n  { selector = \"e3\", algorithm = \"ed25519-sha256\", file = \"keys/missing.pem\" } } } } }", FileName + ":2: "},
		{"syntax", "return { domains = {\n", FileName + ":"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commit, err := p.Prepare(rulesDir(t, tt.src))
			var se *luart.ScriptError
			if !errors.As(err, &se) || !strings.Contains(se.Error(), tt.want) || commit != nil {
				t.Errorf("Prepare = %v, %v; want a *luart.ScriptError containing %q", commit != nil, err, tt.want)
			}
		})
	}
}

// signingSelector returns the selector the plugin signs testMessage with.
func signingSelector(t *testing.T, p *Plugin) string {
	t.Helper()
	r := p.rules.Load()
	if r == nil {
		return ""
	}
	s, err := r.Sign(newMessage(t, testMessage, ""))
	if err != nil || len(s.Selectors) != 1 {
		t.Fatalf("signed with %v, err %v; want one selector", s.Selectors, err)
	}
	return s.Selectors[0]
}

// TestPrepareChangesNothingUntilCommit: a prepared set signs only once
// committed, a refused one never, and a removed rules file stops signing.
func TestPrepareChangesNothingUntilCommit(t *testing.T) {
	var logs testlib.Buffer
	dir := rulesDir(t, rulesWith("e1", "ed1"))
	writeKey(t, filepath.Join(dir, "keys", "ed2.pem"), keyNamed(t, "ed2"))
	p := provision(t, dir, &logs)
	write := func(src string) {
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(rulesWith("e2", "ed2"))
	commit, err := p.Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := signingSelector(t, p); got != "e1" {
		t.Errorf("signs with %s before the commit, want e1", got)
	}
	commit()
	if got := signingSelector(t, p); got != "e2" {
		t.Errorf("signs with %s after the commit, want e2", got)
	}
	write(rulesWith("e3", "missing"))
	if _, err := p.Prepare(dir); err == nil {
		t.Fatal("Prepare accepted a missing key file")
	}
	if got := signingSelector(t, p); got != "e2" {
		t.Errorf("signs with %s after a refused set, want e2", got)
	}
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if commit, err = p.Prepare(dir); err != nil {
		t.Fatal(err)
	}
	commit()
	if p.rules.Load() != nil || !strings.Contains(logs.String(), "messages leave unsigned from now on") {
		t.Errorf("still signing, or not logged, after rules/dkim.lua was removed:\n%s", logs.String())
	}
}

// TestPluginReloadIsAtomic signs from several goroutines while the keys
// change under them: every message carries exactly one signature, made
// entirely by the old set or entirely by the new one, and it verifies.
func TestPluginReloadIsAtomic(t *testing.T) {
	sets := []string{
		`return { domains = { ["shop.test"] = { keys = {
  { selector = "a1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } } }`,
		`return { domains = { ["shop.test"] = { keys = {
  { selector = "b1", algorithm = "ed25519-sha256", file = "keys/ed2.pem" },
  { selector = "b2", algorithm = "rsa-sha256", file = "keys/rsa1.pem" } } } } }`,
	}
	dir := rulesDir(t, sets[0])
	old := p0(t, dir)
	writeKey(t, filepath.Join(dir, "keys", "ed2.pem"), keyNamed(t, "ed2"))
	writeKey(t, filepath.Join(dir, "keys", "rsa1.pem"), keyNamed(t, "rsa1"))
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(sets[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	next, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	lookup := dnsOf(old, next)

	p := &Plugin{log: slog.New(slog.DiscardHandler)}
	p.rules.Store(old)
	stop := make(chan struct{})
	var reloader sync.WaitGroup
	reloader.Add(1)
	go func() {
		defer reloader.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(sets[i%2]), 0o644); err != nil {
				t.Error(err)
				return
			}
			commit, err := p.Prepare(dir)
			if err != nil {
				t.Error(err)
				return
			}
			commit()
		}
	}()
	var signers sync.WaitGroup
	for g := 0; g < 4; g++ {
		signers.Add(1)
		go func() {
			defer signers.Done()
			for range 25 {
				m := newMessage(t, testMessage, "")
				if err := p.Process(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
				vs := verify(t, m.Bytes(), lookup)
				sels := m.Header.Values("DKIM-Signature")
				oldSet := len(vs) == 1 && strings.Contains(sels[0], "s=a1;")
				newSet := len(vs) == 2 && strings.Contains(sels[0], "s=b2;") && strings.Contains(sels[1], "s=b1;")
				if !oldSet && !newSet {
					t.Errorf("signatures from neither set alone: %q", sels)
				}
				for _, v := range vs {
					if v.Err != nil {
						t.Error(v.Err)
					}
				}
			}
		}()
	}
	signers.Wait()
	close(stop)
	reloader.Wait()
}

// p0 loads the rules of dir.
func p0(t *testing.T, dir string) *Rules {
	t.Helper()
	r, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPluginNeverSignsAnotherTenantsDomain checks that a tenant whose
// sender_domains leave out the From: domain is not signed with that
// domain's key, though the key admits every tenant; the tenant's own key
// signs instead, and a tenant that owns the domain is signed with it.
func TestPluginNeverSignsAnotherTenantsDomain(t *testing.T) {
	dir := rulesDir(t, shopRules)
	pl := &Plugin{}
	tenants := tenant.Static{
		"bolt": {Name: "bolt", SenderDomains: []string{"bolt.example"}},
		"shop": {Name: "shop", SenderDomains: []string{"shop.test"}},
	}
	if err := pl.Provision(&extension.Context{RulesDir: dir, Logger: slog.New(slog.DiscardHandler), Tenants: tenants}); err != nil {
		t.Fatal(err)
	}
	commit, err := pl.Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	for _, tc := range []struct {
		tenant, wantDomain string
	}{
		{"bolt", "bolt.platform.test"}, // its own key, never shop.test's
		{"shop", "shop.test"},
		{"", "shop.test"}, // relay-network mail: the domain's own rules only
	} {
		m := newMessage(t, testMessage, tc.tenant)
		if err := pl.Process(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		sig := m.Header.Get("DKIM-Signature")
		if !strings.Contains(sig, "d="+tc.wantDomain+";") {
			t.Errorf("tenant %q, From: news@shop.test: signature %q, want d=%s", tc.tenant, sig, tc.wantDomain)
		}
	}
}
