package node

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// TestReloadReachesTheQueue: a reload that lowers the default connection
// limit in rules/providers.lua reaches the lanes the queue already has,
// without a restart: the node passes the policy's reload notification to
// the queue.
func TestReloadReachesTheQueue(t *testing.T) {
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	port := mailtest.FreePort(t, "127.0.0.73")
	ds.MustAdd("dest.test. 300 IN MX 10 mx.dest.test.", "mx.dest.test. 300 IN A 127.0.0.73")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.73:%d", port), mailtest.Options{})

	rules := benchRules(t)
	n, err := Start(t.Context(), Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: "../../scripts", RulesDir: rules,
		RelayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })

	raw := "From: a@src.test\r\nTo: b@dest.test\r\nSubject: lane\r\n\r\nopens a lane\r\n"
	if err := sendRaw(n.Addr(), "a@src.test", "b@dest.test", raw); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "the message delivered", func() bool { return rx.Recipients() == 1 })
	// laneConnections is the connection limit of the one lane, to
	// dest.test; 0 if there is not exactly one.
	laneConnections := func() int {
		if lanes := n.Queue().Status().Lanes; len(lanes) == 1 {
			return lanes[0].Limits.MaxConnections
		}
		return 0
	}
	if got := laneConnections(); got != 16 {
		t.Fatalf("lane connection limit %d, want 16 from rules/providers.lua; queue %+v", got, n.Queue().Status())
	}

	lowered := strings.Replace(benchProviders, "connections = 16,", "connections = 3,", 1)
	if lowered == benchProviders {
		t.Fatal("benchProviders no longer sets connections = 16")
	}
	if err := os.WriteFile(filepath.Join(rules, "providers.lua"), []byte(lowered), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Policy().Reload(); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "the lane to take the reloaded limit", func() bool { return laneConnections() == 3 })
}
