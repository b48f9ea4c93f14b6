// Package httpintest starts a node with the HTTP injection API for the
// tests of the packages around it: a tenant "acme" with an API key, a
// loopback receiver for the domains d0.test to d3.test, and a DNS server
// that points them at it.
package httpintest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"corriere/core/dns/authserver"
	"corriere/core/httpin"
	"corriere/core/mailtest"
	"corriere/core/node"
	"corriere/core/tenant"
)

// fastProviders lifts the politeness limits of the shipped rules: the
// tests are about the API, not a provider's patience.
const fastProviders = `return {
  default = { connections = 16, messages_per_connection = 1000, recipients_per_message = 100 },
  suspend = {},
  providers = {},
}
`

// fixture is a node with the HTTP API, a tenant "acme" with an API key,
// and a loopback receiver for the domains d0.test to d3.test.
type Fixture struct {
	// Node is the running node.
	Node *node.Node
	// Key is acme's API key.
	Key string
	// RX receives the mail to d0.test to d3.test.
	RX *mailtest.Receiver
	// URL is the injection endpoint.
	URL string
	// Rules is the node's rules directory, a copy of the repository's.
	Rules string
	// Client posts the requests of Post. The default value is
	// http.DefaultClient.
	Client *http.Client
}

// StartNode starts the fixture; tenantFields are Lua fields added to
// acme's tenant file, rules, when not nil, may add files to the rules
// directory before the node starts, and configs change the node's
// configuration. The node stops when the test ends.
func StartNode(t testing.TB, tenantFields string, rules func(dir string), configs ...func(*node.Config)) *Fixture {
	t.Helper()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	port := mailtest.FreePort(t, "127.0.0.71")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.71:%d", port), mailtest.Options{})
	for d := range 4 {
		ds.MustAdd(fmt.Sprintf("d%d.test. 3600 IN MX 10 mx.d%d.test.", d, d), fmt.Sprintf("mx.d%d.test. 3600 IN A 127.0.0.71", d))
	}
	key, hash, err := tenant.NewAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	dir := copyRules(t)
	acme := fmt.Sprintf("return {\n  sender_domains = { \"sender.test\" },\n  api_keys = { %q },\n%s}\n", hash, tenantFields)
	if err := os.WriteFile(filepath.Join(dir, "tenants", "acme.lua"), []byte(acme), 0o644); err != nil {
		t.Fatal(err)
	}
	if rules != nil {
		rules(dir)
	}
	cfg := node.Config{
		Listen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: filepath.Join(root, "scripts"), RulesDir: dir,
		RelayNets:         []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		HTTPMaxRecipients: 1000, HTTPMaxRequestSize: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, c := range configs {
		c(&cfg)
	}
	n, err := node.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	scheme := "http://"
	if cfg.TLSCert != "" {
		scheme = "https://"
	}
	return &Fixture{Node: n, Key: key, RX: rx, URL: scheme + n.HTTPAddr() + httpin.InjectPath, Rules: dir, Client: http.DefaultClient}
}

// root is the repository's directory, found from this file's.
var root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}()

// copyRules copies the repository's rules with fastProviders.
func copyRules(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(filepath.Join(root, "rules"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "rules"), path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "providers.lua"), []byte(fastProviders), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Post sends body with key and returns the status and the decoded answer.
func (f *Fixture) Post(t testing.TB, key string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", f.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// MustJSON encodes v.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
