package node

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/testlib"
)

// TestOptionsFile: each start logs the effective configuration in one
// record and writes the same settings to SPOOL/OPTIONS, replacing the last
// start's file; the admin token is in neither.
func TestOptionsFile(t *testing.T) {
	t.Parallel()
	const token = "a-token-that-must-not-leak"
	spoolDir := t.TempDir()
	cfg := Config{
		Listen: "127.0.0.1:0", SpoolDir: spoolDir, Hostname: "mta.test",
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
		AdminListen: "127.0.0.1:0", AdminToken: token, MaxRecipients: 77,
	}
	for start, maxSessions := range []int{0, 33} {
		var logs testlib.Buffer
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		cfg.MaxSessions = maxSessions
		n, err := Start(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), token) {
			t.Errorf("start %d: the admin token is in the log", start)
		}
		data, err := os.ReadFile(filepath.Join(spoolDir, OptionsFile))
		if err != nil {
			t.Fatal(err)
		}
		file := parseOptions(t, string(data))
		if strings.Contains(string(data), token) {
			t.Errorf("start %d: the admin token is in %s", start, OptionsFile)
		}
		wantSessions := "1000"
		if maxSessions != 0 {
			wantSessions = fmt.Sprint(maxSessions)
		}
		for name, want := range map[string]string{
			"listen": "127.0.0.1:0", "spool_dir": spoolDir, "hostname": "mta.test", "admin_token": redacted,
			"max_recipients": "77", "max_sessions": wantSessions, "max_size": "52428800", "mx_port": "25",
			"event_log": filepath.Join(spoolDir, "events.jsonl"), "bounce_listen": "",
		} {
			if got, ok := file[name]; !ok || got != want {
				t.Errorf("start %d: %s: %s = %q (present: %v), want %q", start, OptionsFile, name, got, ok, want)
			}
		}
		if file["min_free"] == "" || file["min_free"] == "0" {
			t.Errorf("start %d: min_free = %q, want the reserve the spool chose", start, file["min_free"])
		}
		if _, ok := file["logger"]; ok {
			t.Errorf("start %d: %s lists the logger", start, OptionsFile)
		}

		// The log record holds the same settings.
		record := effectiveConfigRecord(t, logs.String())
		for name, want := range file {
			if got := record[name]; got != want {
				t.Errorf("start %d: log record: %s = %v, want %q as in %s", start, name, got, want, OptionsFile)
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(spoolDir, OptionsFile+"*")); len(left) != 1 {
		t.Errorf("files in the spool: %v, want %s alone", left, OptionsFile)
	}
}

// parseOptions reads an OPTIONS file's "name = value" lines, failing the
// test on a name given twice.
func parseOptions(t *testing.T, data string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("%s line %q: want \"name = value\"", OptionsFile, line)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s sets %s twice", OptionsFile, name)
		}
		out[name] = value
	}
	return out
}

// effectiveConfigRecord returns the attributes of the one "effective
// configuration" record in JSON logs.
func effectiveConfigRecord(t *testing.T, logs string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "effective configuration" {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d effective configuration records, want 1", len(found))
	}
	return found[0]
}

func TestSnakeCase(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"Listen": "listen", "SpoolDir": "spool_dir", "DNSServers": "dns_servers", "MXPort": "mx_port",
		"MaxSessionsPerIP": "max_sessions_per_ip", "VERPKeyFile": "verp_key_file", "TLSCert": "tls_cert",
		"FBLAddresses": "fbl_addresses", "ConnRatePerIP": "conn_rate_per_ip", "LuaCallMemory": "lua_call_memory",
	} {
		if got := snakeCase(name); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", name, got, want)
		}
	}
}
