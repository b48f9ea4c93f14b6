package node

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartFailsCleanly: a node that cannot start returns an error, and
// releases what it had taken (the admin port here), whatever step fails.
func TestStartFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name  string
		setup func(cfg *Config)
		want  string
	}{
		{"unreadable VERP key", func(cfg *Config) {
			if err := os.WriteFile(filepath.Join(cfg.SpoolDir, "verp.key"), []byte("not hex\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not hex"},
		{"bounce listener address taken", func(cfg *Config) { cfg.BounceListen = busy.Addr().String() }, "bounce listener"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), AdminListen: freeAddr(t),
				ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
			}
			tt.setup(&cfg)
			n, err := Start(context.Background(), cfg)
			if err == nil {
				n.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want it to mention %q", err, tt.want)
			}
			// Everything was released: the spool opens again, and the
			// admin port is free.
			cfg.BounceListen = ""
			os.Remove(filepath.Join(cfg.SpoolDir, "verp.key"))
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
