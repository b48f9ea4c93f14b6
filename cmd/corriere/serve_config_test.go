package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesInvalidConfiguration: corriere serve reports a
// configuration that node.Config.Validate refuses with exit status 2,
// before it makes the spool or takes an address.
func TestServeRefusesInvalidConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"listen address without port", []string{"--listen", "127.0.0.1"}, `Listen "127.0.0.1": want host:port`},
		{"FBL address without bounce listener", []string{"--fbl-address", "fbl@example.com"}, "FBLAddresses need a BounceListen"},
		{"certificate without key", []string{"--tls-cert", "cert.pem"}, "STARTTLS needs both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spool := filepath.Join(t.TempDir(), "spool")
			args := append([]string{"serve", "--spool", spool, "--scripts", "../../scripts", "--rules", "../../rules"}, tt.args...)
			out, err := exec.Command(corriereBinary(t), args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("exit: %v, want status 2", err)
			}
			if !strings.HasPrefix(string(out), "corriere serve: invalid configuration: ") || !strings.Contains(string(out), tt.want) {
				t.Errorf("output %q, want the invalid configuration reported with %q", out, tt.want)
			}
			if _, err := os.Stat(spool); !os.IsNotExist(err) {
				t.Errorf("the spool directory was made (%v)", err)
			}
		})
	}
}
