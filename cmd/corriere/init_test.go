package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitWritesAWorkingSetup checks corriere init from outside the
// repository: the policy it writes passes rules check through the
// configuration it writes, every line of that configuration is a valid
// setting, private keys are the owner's only, and the unit runs serve
// with the configuration.
func TestInitWritesAWorkingSetup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	var stdout, stderr bytes.Buffer
	if status := initCommand([]string{dir}, &stdout, &stderr); status != 0 {
		t.Fatalf("init: status %d: %s", status, stderr.String())
	}
	conf := filepath.Join(dir, "corriere.conf")
	stdout.Reset()
	if status := runRules(context.Background(), []string{"check", "--config", conf}, nil, &stdout, &stderr); status != 0 {
		t.Fatalf("rules check --config %s: status %d: %s%s", conf, status, stdout.String(), stderr.String())
	}
	// Uncomment every setting: each must still be accepted.
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	all := filepath.Join(dir, "all.conf")
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(l, "# "), " = "); ok && !strings.Contains(name, " ") {
			lines = append(lines, strings.TrimPrefix(l, "# "))
		}
	}
	fs, _ := newServeFlags()
	settings := 0
	fs.VisitAll(func(*flag.Flag) { settings++ })
	if len(lines) != settings {
		t.Errorf("the template has %d settings, serve %d", len(lines), settings)
	}
	if err := os.WriteFile(all, []byte(strings.Join(lines, "\n")), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := applyConfigFile(fs, all); err != nil {
		t.Errorf("the template's defaults do not parse: %v", err)
	}
	keys, err := filepath.Glob(filepath.Join(dir, "rules", "keys", "*.pem"))
	if err != nil || len(keys) == 0 {
		t.Fatalf("no keys written: %v", err)
	}
	for _, k := range keys {
		if fi, err := os.Stat(k); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(dir, "corriere.service"))
	if err != nil || !strings.Contains(string(unit), "serve --config "+conf) || !strings.Contains(string(unit), "AmbientCapabilities=CAP_NET_BIND_SERVICE") {
		t.Errorf("unit:\n%s\n%v", unit, err)
	}
	if status := initCommand([]string{dir}, &stdout, &stderr); status == 0 || !strings.Contains(stderr.String(), "not empty") {
		t.Errorf("init into a non-empty directory: status %d, %q", status, stderr.String())
	}
}

// TestServeWithoutPolicySaysWhatToDo checks serve, started where there is
// no policy, exits 2 with the commands to run and creates nothing.
func TestServeWithoutPolicySaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if status := runServe(context.Background(), []string{"--listen", "127.0.0.1:0", "--admin", "none"}); status != 2 {
		t.Fatalf("status %d, want 2", status)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("serve left %v in the directory (%v)", entries, err)
	}
	if err := policyPresent("scripts", "rules"); err == nil || !strings.Contains(err.Error(), "corriere init /etc/corriere") {
		t.Errorf("error %v does not say what to do", err)
	}
}

// TestToolsRunOnTheBuiltInPolicy checks bounce classify, run where there
// is no policy and given none, uses the policy built into the binary and
// says so, and rules check says what to do.
func TestToolsRunOnTheBuiltInPolicy(t *testing.T) {
	bounceFile, err := filepath.Abs(filepath.Join(bounceData, "dsn-postfix.eml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	if status := runBounce(context.Background(), []string{"classify", bounceFile}, nil, &stdout, &stderr); status != 0 ||
		!strings.Contains(stderr.String(), "using the policy built into the binary") || stdout.Len() == 0 {
		t.Errorf("bounce classify: status %d, stdout %q, stderr %q", status, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if status := runRules(context.Background(), []string{"check"}, nil, &stdout, &stderr); status != 1 ||
		!strings.Contains(stderr.String(), "corriere init") {
		t.Errorf("rules check: status %d, stderr %q", status, stderr.String())
	}
}
