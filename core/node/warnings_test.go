package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/testlib"
)

// TestStartWarnsAboutSurprisingSetups starts nodes on the shipped policy
// (whose tenant "example" has the published demo password) and checks
// each start-up warning appears exactly when its setting calls for it.
func TestStartWarnsAboutSurprisingSetups(t *testing.T) {
	t.Parallel()
	const (
		shortName = "the hostname is not fully qualified"
		noAuth    = "AUTH is not offered"
		loopAuth  = "AUTH is offered only to loopback clients"
		demoPass  = "a tenant uses the demo password"
	)
	certFile, keyFile := testlib.CertificateFiles(t, "mta.example.net")
	ownRules := t.TempDir()
	if err := os.CopyFS(ownRules, os.DirFS(filepath.Join("..", "..", "rules"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ownRules, "tenants", "example.lua")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tune func(*Config)
		want []string
	}{
		{"short hostname, no TLS, demo tenant", func(c *Config) { c.Hostname = "vm" }, []string{shortName, noAuth, demoPass}},
		{"AUTH from loopback only", func(c *Config) { c.InsecureAuthLoopback = true }, []string{loopAuth, demoPass}},
		{"TLS", func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile }, []string{demoPass}},
		{"own tenants, TLS, full name", func(c *Config) { c.TLSCert, c.TLSKey, c.RulesDir = certFile, keyFile, ownRules }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testlib.Buffer
			cfg := Config{
				Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.example.net",
				ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}
			tc.tune(&cfg)
			n, err := Start(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{shortName, noAuth, loopAuth, demoPass} {
				got := strings.Count(logs.String(), w)
				want := 0
				for _, x := range tc.want {
					if x == w {
						want = 1
					}
				}
				if got != want {
					t.Errorf("%q logged %d times, want %d", w, got, want)
				}
			}
		})
	}
}
