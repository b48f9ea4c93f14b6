package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
