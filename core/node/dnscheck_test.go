package node

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/dnscheck"
	"corriere/core/event"
	"corriere/core/testlib"
)

// TestDailyDNSCheck runs the node's DNS check on a short schedule against a
// loopback DNS server: the tenant's last report is at GET
// /api/tenants/example/dns, and when DMARC of one of its domains moves to
// p=reject while its mail does not align, the next check emits a dns_check
// event and counts the change in the metrics.
func TestDailyDNSCheck(t *testing.T) {
	t.Parallel()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	ds.MustAdd(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=none"`)
	cfg := Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, ScriptsDir: "../../scripts", RulesDir: copyTree(t, "../../rules"),
		AdminListen: "127.0.0.1:0", AdminToken: "secret", DNSCheckInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	n, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	var mu sync.Mutex
	var changes []string
	n.Subscribe(event.SinkFunc(func(e *event.Event) {
		if e.Type == event.DNSCheck && e.Tenant == "example" {
			mu.Lock()
			changes = append(changes, e.Reason)
			mu.Unlock()
		}
	}))
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+n.AdminAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	testlib.WaitFor(t, "the first DNS check", func() bool {
		status, _ := get("/api/tenants/example/dns")
		return status == http.StatusOK
	})
	_, body := get("/api/tenants/example/dns")
	var report dnscheck.Report
	if err := json.Unmarshal(body, &report); err != nil {
		t.Fatalf("report: %v\n%s", err, body)
	}
	if report.Tenant != "example" || strings.Join(report.Domains, ",") != "example.com,example.org" {
		t.Errorf("report of tenant %q for %q, want example for example.com,example.org", report.Tenant, report.Domains)
	}

	ds.Remove("_dmarc.example.com")
	ds.MustAdd(`_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject"`)
	const want = "example.com dmarc alignment: warning -> error"
	testlib.WaitFor(t, "a dns_check event for DMARC moving to p=reject", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range changes {
			if strings.HasPrefix(c, want) {
				return true
			}
		}
		return false
	})
	_, metrics := get("/metrics")
	if !strings.Contains(string(metrics), `corriere_dns_check_changes_total{check="dmarc",status="error"}`) {
		t.Errorf("metrics do not count the change:\n%s", metrics)
	}
	if status, _ := get("/api/tenants/nobody/dns"); status != http.StatusNotFound {
		t.Errorf("GET for an unknown tenant: %d, want 404", status)
	}
}
