package node

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"corriere/core/dns/authserver"
	"corriere/core/event"
)

// TestBrokenDKIMRulesRefuseTheWholeReload: a rules/dkim.lua naming a key
// file that does not exist is valid Lua, but the dkim plugin cannot load
// it. The reload is refused as a whole, like a broken script: the current
// generation stays, the error names the file and line, and a node started
// on those files refuses to start the same way.
func TestBrokenDKIMRulesRefuseTheWholeReload(t *testing.T) {
	t.Parallel()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	rules := copyTree(t, "../../rules")
	dkimFile := filepath.Join(rules, "dkim.lua")
	good, err := os.ReadFile(dkimFile)
	if err != nil {
		t.Fatal(err)
	}
	const keyRef = `file = "keys/corriere-smarthost.it.corriere.rsa.pem"`
	at := strings.Index(string(good), keyRef)
	if at < 0 {
		t.Fatalf("rules/dkim.lua no longer names %s", keyRef)
	}
	line := strings.Count(string(good[:at]), "\n") + 1
	broken := strings.Replace(string(good), keyRef, `file = "keys/missing.pem"`, 1)
	wantPos := dkimFile + ":" + strconv.Itoa(line) + ": "

	cfg := Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, ScriptsDir: "../../scripts", RulesDir: rules,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	n, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	var mu sync.Mutex
	var refused []string
	n.Subscribe(event.SinkFunc(func(e *event.Event) {
		if e.Type == event.PolicyLoad && e.Category == event.PolicyRefused {
			mu.Lock()
			refused = append(refused, e.Reason)
			mu.Unlock()
		}
	}))
	before := n.Policy().Status().Generation

	if err := os.WriteFile(dkimFile, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Policy().Reload(); err == nil || !strings.Contains(err.Error(), wantPos) {
		t.Fatalf("reload with a broken rules/dkim.lua: %v, want it refused at %s", err, wantPos)
	}
	st := n.Policy().Status()
	if st.Generation != before || !strings.HasPrefix(st.LastError, wantPos) {
		t.Errorf("after the refused reload: generation %d (was %d), last error %q; want the same generation and %s",
			st.Generation, before, st.LastError, wantPos)
	}
	mu.Lock()
	if len(refused) == 0 || !strings.Contains(refused[len(refused)-1], wantPos) {
		t.Errorf("refused policy events %q, want one naming %s", refused, wantPos)
	}
	mu.Unlock()

	// What the running node refused, a restart refuses too.
	cfg.SpoolDir = t.TempDir()
	if n2, err := Start(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), wantPos) {
		if err == nil {
			n2.Shutdown(t.Context())
		}
		t.Errorf("start on the broken files: %v, want refused at %s", err, wantPos)
	}

	if err := os.WriteFile(dkimFile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Policy().Reload(); err != nil {
		t.Fatalf("reload of the repaired file: %v", err)
	}
	if g := n.Policy().Status().Generation; g <= before {
		t.Errorf("generation %d after the repaired reload, want more than %d", g, before)
	}
}
