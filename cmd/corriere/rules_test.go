package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"corriere/core/dns/authserver"
	"corriere/core/tenant"
)

// copyRules copies the shipped rules/ into a temporary directory.
func copyRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rules")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRulesCheckLoadsPluginFiles: rules/dkim.lua is policy too. A file the
// node would refuse (valid Lua naming a key file that does not exist, or
// invalid Lua) fails `rules check` at its file and line.
func TestRulesCheckLoadsPluginFiles(t *testing.T) {
	good, err := os.ReadFile("../../rules/dkim.lua")
	if err != nil {
		t.Fatal(err)
	}
	const keyRef = `file = "keys/corriere-smarthost.it.corriere.rsa.pem"`
	at := strings.Index(string(good), keyRef)
	if at < 0 {
		t.Fatalf("rules/dkim.lua no longer names %s", keyRef)
	}
	keyLine := strconv.Itoa(strings.Count(string(good[:at]), "\n") + 1)
	tests := []struct {
		name   string
		dkim   string // "" keeps the shipped file
		status int
		want   string // starts stdout when status is 0; else stderr, after the rules directory
	}{
		{"shipped", "", 0, "ok: "},
		{"missing key file", strings.Replace(string(good), keyRef, `file = "keys/missing.pem"`, 1), 1,
			"dkim.lua:" + keyLine + ": "},
		{"unknown field", "return {\n  domains = {},\n  domain = \"x.example\",\n}\n", 1, "dkim.lua:3: "},
		{"syntax error", "return {\n  domains = {\n", 1, "dkim.lua:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := copyRules(t)
			if tt.dkim != "" {
				if err := os.WriteFile(filepath.Join(rules, "dkim.lua"), []byte(tt.dkim), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			status := runRules(t.Context(), []string{"check", "--scripts", "../../scripts", "--rules", rules}, nil, &stdout, &stderr)
			out, want := stdout.String(), tt.want
			if tt.status != 0 {
				out, want = stderr.String(), filepath.Join(rules, tt.want)
			}
			if status != tt.status || !strings.HasPrefix(out, want) {
				t.Errorf("rules check = %d\nstdout: %s\nstderr: %s\nwant %d and %q", status, stdout.String(), stderr.String(), tt.status, tt.want)
			}
		})
	}
}

// TestRulesTestAsksTheGivenNameservers: `rules test --dns` looks the MX up
// where the node would, so a Google-hosted domain is provider gmail with
// Gmail's limits; a lookup that fails is said plainly, not hidden behind a
// guess.
func TestRulesTestAsksTheGivenNameservers(t *testing.T) {
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	ds.MustAdd("gmail.com. 300 IN MX 5 gmail-smtp-in.l.google.com.", "broken.example. 300 IN MX 10 mx.broken.example.")
	ds.SetServFail("broken.example.", true)
	tests := []struct {
		rcpt   string
		status int
		want   []string
	}{
		{"giulia@gmail.com", 0, []string{"via MX gmail-smtp-in.l.google.com (looked up): provider gmail", "Shape      gmail from",
			"burst enforced: 100 back to back"}},
		{"x@broken.example", 0, []string{"MX         lookup FAILED: ", "the domain itself stands in for its MX", "provider broken.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := runRules(t.Context(), []string{"test", "--scripts", "../../scripts", "--rules", "../../rules",
				"--message", "../../testdata/luart/messages/transactional.eml", "--rcpt", tt.rcpt, "--dns", ds.Addr}, nil, &stdout, &stderr)
			if status != tt.status {
				t.Fatalf("rules test = %d, want %d\nstdout: %s\nstderr: %s", status, tt.status, stdout.String(), stderr.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if status := runRules(t.Context(), []string{"test", "--message", "x.eml", "--rcpt", "a@b.example", "--dns", "localhost"}, nil, &stdout, &stderr); status != 2 || !strings.Contains(stderr.String(), "want ip:port") {
		t.Errorf("--dns localhost: status %d, stderr %q; want 2 and the expected form", status, stderr.String())
	}
}

// TestRulesAPIKey: `rules apikey` prints a key of the tenant and the
// api_keys line holding its hash.
func TestRulesAPIKey(t *testing.T) {
	var out, errOut bytes.Buffer
	if status := runRules(t.Context(), []string{"apikey", "acme"}, strings.NewReader(""), &out, &errOut); status != 0 {
		t.Fatalf("status %d: %s", status, errOut.String())
	}
	var key, hash string
	if _, err := fmt.Sscanf(out.String(), "key: %s\napi_keys = { %q },\n", &key, &hash); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	tn := &tenant.Tenant{Name: "acme", APIKeyHashes: []string{hash}}
	if name, _ := tenant.APIKeyTenant(key); name != "acme" || !tn.CheckAPIKey(key) {
		t.Errorf("key %q, hash %q do not match", key, hash)
	}
	if status := runRules(t.Context(), []string{"apikey"}, strings.NewReader(""), &out, &errOut); status != 2 {
		t.Errorf("without a tenant: status %d, want 2", status)
	}
}
