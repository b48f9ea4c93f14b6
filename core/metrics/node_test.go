package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"corriere/core/node"
	"corriere/core/policy"
	"corriere/core/sim"
	"corriere/core/testlib"
)

// Recipients at the simulated gmail, each with its fate.
const (
	delivered = "mario.rossi@gmail.com"
	bounced   = "unknown-anna@gmail.com" // 550 5.1.1
	deferred  = "full-luca@gmail.com"    // 452 4.2.2
)

// startNode starts a node against the simulated internet with the admin
// API and a metrics address of its own, logging JSON into logs.
func startNode(t *testing.T, logs io.Writer) *node.Node {
	t.Helper()
	world, err := sim.LoadWorld(filepath.Join("..", "..", "testdata", "sim", "world.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.Start(context.Background(), world, sim.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n, err := node.Start(context.Background(), node.Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.corriere-smarthost.it",
		DNSServers: []string{s.DNSAddr()}, MXPort: s.MXPort(),
		Sources:    []policy.Source{{IP: "127.0.0.2", Helo: "mta2.corriere-smarthost.it"}},
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: filepath.Join("..", "..", "rules"),
		InsecureAuthLoopback: true, Retry: []time.Duration{time.Hour},
		AdminListen: "127.0.0.1:0", AdminToken: "metrics-test", MetricsListen: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

// submit sends one message as the example tenant to rcpts.
func submit(t *testing.T, addr string, rcpts ...string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("app.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "example", "corriere-demo")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alerts@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "From: alerts@example.com\r\nTo: you\r\nSubject: Your order has shipped\r\nDate: %s\r\nMessage-ID: <%d@example.com>\r\n\r\nIt is on its way.\r\n",
		time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// get fetches a URL without any credentials.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// scrape fetches and parses /metrics from addr, as Prometheus does.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return families
}

// sum adds the values of the series of a family whose labels include
// want.
func sum(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestMetricsAfterRealMail sends a message with three recipients through a
// node to the simulated gmail, where one is delivered, one bounced and one
// deferred, and scrapes /metrics without a token from the metrics address
// and from the admin address: both parse, and count what happened.
func TestMetricsAfterRealMail(t *testing.T) {
	var logs testlib.Buffer
	n := startNode(t, &logs)
	admin := strings.TrimSpace(n.AdminAddr())
	submit(t, n.Addr(), delivered, bounced, deferred)

	example := map[string]string{"tenant": "example", "provider": "gmail"}
	outcome := func(families map[string]*dto.MetricFamily, o string) float64 {
		return sum(families, "corriere_recipient_outcomes_total", map[string]string{"outcome": o, "tenant": "example", "provider": "gmail"})
	}
	var families map[string]*dto.MetricFamily
	testlib.WaitFor(t, "the three outcomes in /metrics", func() bool {
		families = scrape(t, n.MetricsAddr())
		return outcome(families, "delivered") == 1 && outcome(families, "bounced") == 1 && outcome(families, "deferred") == 1
	})

	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		says   string
	}{
		{"corriere_messages_received_total", map[string]string{"tenant": "example"}, eq(1), "1"},
		{"corriere_recipients_received_total", map[string]string{"tenant": "example"}, eq(3), "3"},
		{"corriere_recipient_outcomes_total", map[string]string{"outcome": "expired"}, eq(0), "0"},
		{"corriere_recipient_outcomes_total", example, atLeast(3), "at least 3"},
		{"corriere_hook_duration_seconds", map[string]string{"hook": "classify"}, eq(1), "1 call"},
		{"corriere_hook_duration_seconds", map[string]string{"hook": "route"}, atLeast(1), "at least 1 call"},
		{"corriere_hook_duration_seconds", map[string]string{"hook": "on_response"}, atLeast(3), "at least 3 calls"},
		{"corriere_spool_commit_duration_seconds", map[string]string{"sync": "true"}, atLeast(1), "at least 1 synced commit (the message)"},
		{"corriere_smtp_sessions_in_total", nil, eq(1), "1"},
		{"corriere_smtp_sessions_out_total", nil, atLeast(1), "at least 1"},
		{"corriere_smtp_dial_failures_total", nil, eq(0), "0"},
		{"corriere_queue_pending_recipients", nil, atLeast(1), "at least 1 (the deferred recipient)"},
		{"corriere_queue_scheduled_recipients", nil, atLeast(1), "at least 1 (the deferred recipient)"},
		{"corriere_event_log_dropped_total", nil, eq(0), "0"},
	}
	for _, c := range checks {
		if got := sum(families, c.name, c.labels); !c.want(got) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got, c.says)
		}
	}
	for _, name := range []string{"corriere_event_log_dropped_total", "corriere_queue_ready_recipients", "corriere_lanes_suspended", "corriere_smtp_connections_out_open", "go_goroutines"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s missing from the scrape", name)
		}
	}
	testlib.WaitFor(t, "the SMTP session closed in /metrics", func() bool {
		return sum(scrape(t, n.MetricsAddr()), "corriere_smtp_sessions_in_open", nil) == 0
	})

	// The admin address serves the same without a token, and still wants
	// one for its API.
	fromAdmin := scrape(t, admin)
	if got := outcome(fromAdmin, "delivered"); got != 1 {
		t.Errorf("delivered on the admin address = %v, want 1", got)
	}
	for _, addr := range []string{admin, n.MetricsAddr()} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := get(t, "http://"+addr+path); code != http.StatusOK {
				t.Errorf("GET %s%s = %d %s, want 200", addr, path, code, body)
			}
		}
	}
	if code, _ := get(t, "http://"+admin+"/api/status"); code != http.StatusUnauthorized {
		t.Errorf("GET /api/status without a token = %d, want 401", code)
	}

	// One info line per delivery attempt, with what an operator needs.
	lines := attemptLines(t, logs.String())
	for rcpt, want := range map[string]struct{ outcome, reply string }{
		delivered: {"delivered", "250"}, bounced: {"bounced", "550"}, deferred: {"deferred", "452"},
	} {
		l, ok := lines[rcpt]
		if !ok {
			t.Errorf("no delivery attempt logged for %s", rcpt)
			continue
		}
		if l["outcome"] != want.outcome || !strings.HasPrefix(fmt.Sprint(l["reply"]), want.reply) ||
			l["provider"] != "gmail" || l["source_ip"] != "127.0.0.2" || l["msg_id"] == "" || l["level"] != "INFO" {
			t.Errorf("attempt logged for %s: %v, want outcome %s, reply %s..., provider gmail, source_ip 127.0.0.2, a msg_id, at INFO",
				rcpt, l, want.outcome, want.reply)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("attempt logged for %s has no duration_ms: %v", rcpt, l)
		}
	}
}

// attemptLines returns the "delivery attempt" lines of a JSON log by
// recipient.
func attemptLines(t *testing.T, logs string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == "delivery attempt" {
			out[fmt.Sprint(m["rcpt"])] = m
		}
	}
	return out
}

func eq(v float64) func(float64) bool      { return func(got float64) bool { return got == v } }
func atLeast(v float64) func(float64) bool { return func(got float64) bool { return got >= v } }
