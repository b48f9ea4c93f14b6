package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartFailsCleanly: a node that cannot start returns an error naming
// the cause, and releases what it had taken, whatever step fails: a node
// started next on the same spool and the same addresses starts.
func TestStartFailsCleanly(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	tests := []struct {
		name  string
		spoil func(t *testing.T, cfg *Config)
		want  string
	}{
		{"plugin refuses its files", func(t *testing.T, cfg *Config) {
			cfg.RulesDir = rewriteRule(t, "dkim.lua", `file = "keys/corriere-smarthost.it.corriere.rsa.pem"`, `file = "keys/missing.pem"`)
		}, "missing.pem"},
		{"broken policy", func(t *testing.T, cfg *Config) {
			cfg.RulesDir = rewriteRule(t, "providers.lua", "return {", "return {{")
		}, "providers.lua"},
		{"unreadable VERP key", func(t *testing.T, cfg *Config) {
			cfg.VERPKeyFile = filepath.Join(t.TempDir(), "verp.key")
			if err := os.WriteFile(cfg.VERPKeyFile, []byte("not hex\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not hex"},
		{"TLS certificate missing", func(t *testing.T, cfg *Config) {
			cfg.TLSCert, cfg.TLSKey = filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
		}, "TLS certificate"},
		{"bounce listener address taken", func(t *testing.T, cfg *Config) { cfg.BounceListen = busy.Addr().String() }, "bounce listener"},
		{"admin address taken", func(t *testing.T, cfg *Config) { cfg.AdminListen = busy.Addr().String() }, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{
				Listen: freeAddr(t), SpoolDir: t.TempDir(), AdminListen: freeAddr(t), BounceListen: freeAddr(t),
				ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			broken := cfg
			tt.spoil(t, &broken)
			n, err := Start(context.Background(), broken)
			if err == nil {
				n.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want it to mention %q", err, tt.want)
			}
			// Everything was released: the spool opens again, and the
			// SMTP, bounce and admin addresses are free.
			n, err = Start(context.Background(), cfg)
			if err != nil {
				t.Fatalf("second Start: %v", err)
			}
			if err := n.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// rewriteRule copies the repository's rules with old replaced by new in
// one file, and returns the copy's directory.
func rewriteRule(t *testing.T, file, old, new string) string {
	t.Helper()
	dir := copyTree(t, filepath.Join("..", "..", "rules"))
	path := filepath.Join(dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("rules/%s no longer contains %s", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
