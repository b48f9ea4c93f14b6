package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFile checks how a configuration file applies to serve's
// settings: paths relative to the file's directory, the command line
// winning, and precise errors.
func TestConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		args    []string
		want    map[string]string // flag → value after parsing
		wantErr string
	}{
		{
			name: "relative paths resolve against the file's directory",
			file: "spool = spool\nscripts = ../policy/scripts\ntls-cert = /etc/ssl/c.pem\nlisten = 127.0.0.1:2526\n",
			want: map[string]string{"spool": "DIR/spool", "scripts": "ROOT/policy/scripts", "tls-cert": "/etc/ssl/c.pem", "listen": "127.0.0.1:2526"},
		},
		{
			name: "the command line wins",
			file: "spool = spool\nmx-port = 2526\n",
			args: []string{"--mx-port", "2600", "--spool", "/var/spool/corriere"},
			want: map[string]string{"spool": "/var/spool/corriere", "mx-port": "2600"},
		},
		{
			name: "repeatable settings repeat",
			file: "dns = 127.0.0.1:53\ndns = 127.0.0.2:53\n# a comment\n\n",
			want: map[string]string{"dns": "127.0.0.1:53,127.0.0.2:53"},
		},
		{name: "unknown setting", file: "mx-prot = 25\n", wantErr: `corriere.conf:1: unknown setting "mx-prot" (did you mean --mx-port?)`},
		{name: "not name = value", file: "spool\n", wantErr: `corriere.conf:1: want "name = value"`},
		{name: "bad value", file: "\nmx-port = x\n", wantErr: `corriere.conf:2: mx-port: parse error`},
		{name: "no include", file: "config = other.conf\n", wantErr: "cannot include another"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "etc")
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "corriere.conf")
			if err := os.WriteFile(path, []byte(tc.file), 0o640); err != nil {
				t.Fatal(err)
			}
			fs, _ := newServeFlags()
			var stderr bytes.Buffer
			fs.SetOutput(&stderr)
			status, ok := parseFlags(fs, append([]string{"--config", path}, tc.args...))
			if tc.wantErr != "" {
				if ok || status != 2 || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("ok %v, status %d, stderr %q; want an error with %q", ok, status, stderr.String(), tc.wantErr)
				}
				return
			}
			if !ok {
				t.Fatalf("status %d: %s", status, stderr.String())
			}
			for name, want := range tc.want {
				want = strings.NewReplacer("DIR", dir, "ROOT", root).Replace(want)
				if got := fs.Lookup(name).Value.String(); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestEveryCommandReadsTheConfig checks a command other than serve takes
// the settings it shares with serve from --config: rules check finds the
// policy the file names, from another current directory.
func TestEveryCommandReadsTheConfig(t *testing.T) {
	scripts, err := filepath.Abs("../../scripts")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "corriere.conf")
	body := "scripts = " + scripts + "\nrules = missing-rules\nspool = spool\n"
	if err := os.WriteFile(conf, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	status := runRules(context.Background(), []string{"check", "--config", conf}, nil, &stdout, &stderr)
	// The rules directory the file names (relative to it) does not exist:
	// the error must name that path, proving the file was read and the
	// path resolved against its directory.
	if status == 0 || !strings.Contains(stdout.String()+stderr.String(), filepath.Join(dir, "missing-rules")) {
		t.Errorf("status %d, output %q %q; want a failure naming %s", status, stdout.String(), stderr.String(), filepath.Join(dir, "missing-rules"))
	}
}
