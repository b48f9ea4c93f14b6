package node

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/plugin"
	"corriere/core/policy"
	"corriere/core/queue"
)

// TestEnsureDefaults: every zero field gets the default its doc comment
// promises.
func TestEnsureDefaults(t *testing.T) {
	t.Parallel()
	hostname, _ := os.Hostname()
	if hostname == "" {
		hostname = "localhost"
	}
	resolver := dns.Options{}
	resolver.EnsureDefaults()

	cfg := Config{SpoolDir: "/var/spool/corriere"}
	cfg.EnsureDefaults()
	tests := []struct {
		field string
		want  any
	}{
		{"Listen", "127.0.0.1:2525"},
		{"SpoolDir", "/var/spool/corriere"},
		{"EventLog", "/var/spool/corriere/events.jsonl"},
		{"Hostname", hostname},
		{"DNSServers", resolver.Servers},
		{"MXPort", 25},
		{"MTASTSPort", 443},
		{"NoMTASTS", false},
		{"DANEResolvers", []string(nil)},
		{"TLSRoots", ""},
		{"Sources", []policy.Source(nil)},
		{"RelayNets", []netip.Prefix(nil)},
		{"ScriptsDir", "./scripts"},
		{"RulesDir", "./rules"},
		{"MinFree", uint64(0)}, // the spool chooses
		{"DataMemory", int64(128 << 20)},
		{"LuaCallMemory", int64(16 << 20)},
		{"LuaStateMemory", int64(16 << 20)},
		{"MaxSize", int64(50 << 20)},
		{"MaxRecipients", 1000},
		{"MaxLineLength", 64 << 10},
		{"EventLogMaxSize", int64(0)},
		{"EventLogKeep", 5},
		{"MetricsListen", ""},
		{"MaxSessions", 1000},
		{"MaxSessionsPerIP", 100},
		{"ConnRatePerIP", 100.0},
		{"IdleTimeout", 5 * time.Minute},
		{"FirstCommandTimeout", 30 * time.Second},
		{"DataTimeout", 30 * time.Minute},
		{"TLSCert", ""},
		{"TLSKey", ""},
		{"InsecureAuthLoopback", false},
		{"MaxOutbound", 1000},
		{"MaxAge", 5 * 24 * time.Hour},
		{"Retry", queue.DefaultRetry},
		{"Plugins", plugin.IDs()},
		{"AdminListen", ""},
		{"AdminToken", ""},
		{"BounceListen", ""},
		{"FBLAddresses", []string(nil)},
		{"Postmaster", ""},
		{"VERPKeyFile", "/var/spool/corriere/verp.key"},
		{"Logger", slog.Default()},
	}
	for _, tt := range tests {
		got := reflect.ValueOf(cfg).FieldByName(tt.field)
		if !got.IsValid() {
			t.Errorf("Config has no field %s", tt.field)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), tt.want) {
			t.Errorf("%s = %v, want %v", tt.field, got.Interface(), tt.want)
		}
	}

	// The default schedule is a copy: changing a node's does not change
	// the queue's.
	cfg.Retry[0] = time.Hour
	if queue.DefaultRetry[0] == time.Hour {
		t.Error("Config.Retry shares queue.DefaultRetry's array")
	}
}

// TestEnsureDefaultsKeepsSetFields: fields already set, including the
// negative "no limit" values and an empty plugin list, are left alone, and
// EnsureDefaults can run twice.
func TestEnsureDefaultsKeepsSetFields(t *testing.T) {
	t.Parallel()
	set := Config{
		Listen: "127.0.0.1:0", SpoolDir: "spool", EventLog: "/var/log/events.jsonl", Hostname: "mta.example",
		DNSServers: []string{"127.0.0.1:5300"}, MXPort: 2526, MTASTSPort: 8443, ScriptsDir: "s", RulesDir: "r",
		MinFree: 1 << 30, DataMemory: 1 << 20, LuaCallMemory: 1 << 20, LuaStateMemory: 2 << 20,
		MaxSize: 10, MaxRecipients: 2, MaxLineLength: 5000, MaxSessions: 3, MaxSessionsPerIP: -1, ConnRatePerIP: -1,
		EventLogKeep: 2,
		IdleTimeout:  time.Second, FirstCommandTimeout: 2 * time.Second, DataTimeout: 3 * time.Second,
		MaxOutbound: 4, MaxAge: time.Hour, Retry: []time.Duration{time.Minute}, Plugins: []string{},
		VERPKeyFile: "verp.key", Logger: slog.New(slog.DiscardHandler),
	}
	cfg := set
	cfg.EnsureDefaults()
	cfg.EnsureDefaults()
	if !reflect.DeepEqual(cfg, set) {
		t.Errorf("EnsureDefaults changed set fields:\n got %+v\nwant %+v", cfg, set)
	}
}

// TestValidate: each invalid setting is refused with an error naming it;
// the defaults and the documented special values pass.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // "" for a valid configuration
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no limits per IP", func(c *Config) { c.MaxSessionsPerIP, c.ConnRatePerIP = -1, -1 }, ""},
		{"no plugins", func(c *Config) { c.Plugins = []string{} }, ""},
		{"bounce listener with FBL addresses", func(c *Config) {
			c.BounceListen, c.FBLAddresses = "127.0.0.1:2526", []string{"fbl@example.com"}
		}, ""},
		{"TLS", func(c *Config) { c.TLSCert, c.TLSKey = "cert.pem", "key.pem" }, ""},

		{"no spool", func(c *Config) { c.SpoolDir = "" }, "SpoolDir: no spool directory"},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, `Listen "127.0.0.1": want host:port`},
		{"listen on a bad port", func(c *Config) { c.Listen = "127.0.0.1:twentyfive" }, `Listen "127.0.0.1:twentyfive"`},
		{"admin without port", func(c *Config) { c.AdminListen = "localhost" }, `AdminListen "localhost": want host:port`},
		{"bounce listener without port", func(c *Config) { c.BounceListen = "::1" }, `BounceListen "::1"`},
		{"FBL without bounce listener", func(c *Config) { c.FBLAddresses = []string{"fbl@example.com"} }, "FBLAddresses need a BounceListen"},
		{"postmaster without bounce listener", func(c *Config) { c.Postmaster = "ops@example.com" }, `Postmaster "ops@example.com"`},
		{"postmaster that is no address", func(c *Config) { c.BounceListen, c.Postmaster = "127.0.0.1:2526", "ops" }, `Postmaster "ops"`},
		{"nameserver without port", func(c *Config) { c.DNSServers = []string{"127.0.0.1"} }, `DNSServers: "127.0.0.1" is not host:port`},
		{"MX port out of range", func(c *Config) { c.MXPort = 65536 }, "MXPort 65536: not a TCP port"},
		{"negative MX port", func(c *Config) { c.MXPort = -25 }, "MXPort -25"},
		{"MTA-STS port out of range", func(c *Config) { c.MTASTSPort = 70000 }, "MTASTSPort 70000: not a TCP port"},
		{"source that is no IP", func(c *Config) { c.Sources = []policy.Source{{IP: "mta.example"}} }, "Sources:"},
		{"zero relay network", func(c *Config) { c.RelayNets = []netip.Prefix{{}} }, "RelayNets"},
		{"certificate without key", func(c *Config) { c.TLSCert = "cert.pem" }, "STARTTLS needs both"},
		{"key without certificate", func(c *Config) { c.TLSKey = "key.pem" }, "STARTTLS needs both"},
		{"negative max size", func(c *Config) { c.MaxSize = -1 }, "MaxSize -1: want a positive number"},
		{"negative max recipients", func(c *Config) { c.MaxRecipients = -1 }, "MaxRecipients -1"},
		{"negative max sessions", func(c *Config) { c.MaxSessions = -1 }, "MaxSessions -1"},
		{"negative max outbound", func(c *Config) { c.MaxOutbound = -1 }, "MaxOutbound -1"},
		{"negative data memory", func(c *Config) { c.DataMemory = -1 }, "DataMemory -1"},
		{"negative Lua call memory", func(c *Config) { c.LuaCallMemory = -1 }, "LuaCallMemory -1"},
		{"negative Lua state memory", func(c *Config) { c.LuaStateMemory = -1 }, "LuaStateMemory -1"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "IdleTimeout -1s: want a positive duration"},
		{"negative first command timeout", func(c *Config) { c.FirstCommandTimeout = -time.Second }, "FirstCommandTimeout -1s"},
		{"negative data timeout", func(c *Config) { c.DataTimeout = -time.Second }, "DataTimeout -1s"},
		{"negative max age", func(c *Config) { c.MaxAge = -time.Hour }, "MaxAge -1h0m0s"},
		{"configuration of a plugin not enabled", func(c *Config) {
			c.Plugins, c.PluginConfig = []string{}, map[string]map[string]any{"tracking": {"listen": "127.0.0.1:0"}}
		}, `PluginConfig: plugin "tracking" is not enabled`},
		{"zero retry step", func(c *Config) { c.Retry = []time.Duration{time.Minute, 0} }, "Retry [1m0s 0s]: each step must be a positive duration"},
		{"unknown plugin", func(c *Config) { c.Plugins = []string{"nosuch"} }, `Plugins: "nosuch" is not registered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{SpoolDir: "spool"}
			cfg.EnsureDefaults()
			tt.change(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestStartRefusesInvalidConfigBeforeOpeningAnything: an invalid
// configuration fails Start with Validate's error, and not even the spool
// directory is made.
func TestStartRefusesInvalidConfigBeforeOpeningAnything(t *testing.T) {
	t.Parallel()
	spoolDir := filepath.Join(t.TempDir(), "spool")
	_, err := Start(context.Background(), Config{SpoolDir: spoolDir, Listen: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), `Listen "127.0.0.1"`) {
		t.Fatalf("Start: %v, want the Listen address refused", err)
	}
	if _, err := os.Stat(spoolDir); !os.IsNotExist(err) {
		t.Errorf("the spool directory exists after a refused start (%v)", err)
	}
}
