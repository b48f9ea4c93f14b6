package dkim

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/ingest"
	"corriere/core/plugin"
)

const oneKey = `return { domains = { ["shop.test"] = { keys = {
  { selector = "%s", algorithm = "ed25519-sha256", file = "keys/%s.pem" } } } } }`

func rulesWith(selector, keyName string) string {
	return strings.NewReplacer("%s", selector).Replace(strings.Replace(oneKey, "keys/%s", "keys/"+keyName, 1))
}

// syncBuffer is a log buffer that reloads in the background may write to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// provision makes the plugin the way the node does.
func provision(t *testing.T, dir string, logs *syncBuffer) *Plugin {
	t.Helper()
	p, err := plugin.New("dkim")
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := p.(*Plugin)
	if !ok {
		t.Fatalf("plugin dkim is a %T", p)
	}
	if err := pl.Provision(&plugin.Context{RulesDir: dir, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	return pl
}

func TestPluginProvision(t *testing.T) {
	var logs syncBuffer
	p := provision(t, rulesDir(t, rulesWith("e1", "ed1")), &logs)
	if p.StageOrder() != ingest.SignOrder {
		t.Errorf("StageOrder = %d, want ingest.SignOrder", p.StageOrder())
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
	var logs syncBuffer
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
	err := p.Provision(&plugin.Context{RulesDir: rulesDir(t, "return { domains = 1 }"), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), FileName+":1: domains") {
		t.Errorf("Provision error = %v, want the file and line", err)
	}
	err = p.Provision(&plugin.Context{RulesDir: t.TempDir(), Config: map[string]any{"key": "x"}})
	if err == nil {
		t.Error("Provision accepted a configuration section")
	}
}

// waitSelector waits until the plugin signs with the given selector.
func waitSelector(t *testing.T, p *Plugin, sel string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := p.rules.Load().Sign(newMessage(t, testMessage, ""))
		if err == nil && len(s.Selectors) == 1 && s.Selectors[0] == sel {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %v, want %s", s.Selectors, sel)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPluginReloadsOnPolicyLoad(t *testing.T) {
	var logs syncBuffer
	dir := rulesDir(t, rulesWith("e1", "ed1"))
	writeKey(t, filepath.Join(dir, "keys", "ed2.pem"), keyNamed(t, "ed2"))
	p := provision(t, dir, &logs)
	var bus event.Bus
	bus.Subscribe(p)

	write := func(src string) {
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(rulesWith("e2", "ed2"))
	bus.Emit(&event.Event{Type: event.PolicyLoad, Category: "refused"})
	bus.Emit(&event.Event{Type: event.Received})
	time.Sleep(50 * time.Millisecond)
	waitSelector(t, p, "e1") // only a loaded policy reloads the keys

	bus.Emit(&event.Event{Type: event.PolicyLoad, Category: "loaded"})
	waitSelector(t, p, "e2")

	write("return { domains = { [\"shop.test\"] = { keys = {\n  { selector = \"e3\", algorithm = \"ed25519-sha256\", file = \"keys/missing.pem\" } } } } }")
	bus.Emit(&event.Event{Type: event.PolicyLoad, Category: "loaded"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged for a broken reload:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), FileName+":2: ") {
		t.Errorf("the reload error has no file:line:\n%s", logs.String())
	}
	waitSelector(t, p, "e2") // the previous keys stay
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

	p := &Plugin{dir: dir, log: slog.New(slog.DiscardHandler)}
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
			if err := p.Reload(); err != nil {
				t.Error(err)
				return
			}
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

func TestPluginCloseStopsReloads(t *testing.T) {
	var logs syncBuffer
	p := provision(t, rulesDir(t, rulesWith("e1", "ed1")), &logs)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(logs.String(), "keys loaded")
	p.Emit(&event.Event{Type: event.PolicyLoad, Category: "loaded"})
	p.Close()
	if after := strings.Count(logs.String(), "keys loaded"); after != before {
		t.Errorf("a reload ran after Close")
	}
}
