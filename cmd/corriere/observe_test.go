package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// TestServeObservability runs `corriere serve` with --metrics,
// --log-format json and a rotated event log, sends mail through it, and
// checks what an operator would: the metrics and health endpoints answer
// without a token, every log line is JSON with one per delivery attempt,
// the event log rotates by size, and SIGUSR1 reopens it after a rename.
func TestServeObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.42")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.42:%d", port), mailtest.Options{})

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", mailtest.FreePort(t, "127.0.0.1"))
	events := filepath.Join(t.TempDir(), "events.jsonl")
	p := startServe(t, t.TempDir(), "--dns", dnsAddr, "--mx-port", fmt.Sprint(port),
		"--metrics", metricsAddr, "--log-format", "json",
		"--events", events, "--events-max-size", "2K", "--events-keep", "3")

	send := func(n int, tag string) {
		t.Helper()
		conn, rw, err := openSession(p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range n {
			line, err := smtpSend(rw, "app@sender.test", fmt.Sprintf("%s%d@dest.test", tag, i), "Subject: observability\r\n\r\nhello\r\n")
			if err != nil || !strings.HasPrefix(line, "250") {
				t.Fatalf("message %s%d: %q %v", tag, i, line, err)
			}
		}
	}
	const first = 20
	send(first, "a")
	rx.Wait(t, first, 20*time.Second)

	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		code, body := httpGet(t, "http://"+metricsAddr+path)
		if code != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
		if path == "/metrics" && !strings.Contains(body, "corriere_recipient_outcomes_total{") {
			t.Errorf("/metrics has no delivery outcomes:\n%s", body)
		}
	}

	// Rotated at 2K: a delivered and a received event are about 300 bytes
	// each, so 20 messages make several files, of which 3 are kept.
	testlib.WaitFor(t, "the event log rotated and flushed", func() bool {
		_, err1 := os.Stat(events + ".3")
		_, err4 := os.Stat(events + ".4")
		return err1 == nil && os.IsNotExist(err4)
	})

	// logrotate: rename, then SIGUSR1; later events go to a new file.
	if err := os.Rename(events, events+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "the event log reopened", func() bool {
		_, err := os.Stat(events)
		return err == nil
	})
	send(1, "b")
	rx.Wait(t, first+1, 20*time.Second)
	testlib.WaitFor(t, "the new message's events in the reopened file", func() bool {
		b, _ := os.ReadFile(events)
		return strings.Contains(string(b), `"rcpt":"b0@dest.test"`)
	})

	attempts := 0
	sc := bufio.NewScanner(strings.NewReader(p.logs()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["msg"] == "delivery attempt" {
			attempts++
		}
	}
	if attempts != first+1 {
		t.Errorf("%d delivery attempts logged, want %d", attempts, first+1)
	}
}

// httpGet fetches url without credentials.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServeObservabilityFlags checks the refusals of the new flags.
func TestServeObservabilityFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--events-max-size", "lots"}, "--events-max-size"},
		{[]string{"--events-max-size", "0"}, "--events-max-size"},
		{[]string{"--events", "-", "--events-max-size", "10M"}, "standard output"},
		{[]string{"--events-keep", "0"}, "--events-keep"},
	}
	for _, tt := range tests {
		fs, f := newServeFlags()
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if _, err := f.nodeConfig(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one naming %s", tt.args, err, tt.want)
		}
	}
	fs, f := newServeFlags()
	if err := fs.Parse([]string{"--events", "-", "--log-format", "json", "--metrics", "127.0.0.1:9100", "--events-max-size", "", "--events-keep", "2"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.nodeConfig()
	if err != nil || cfg.EventLog != "-" || cfg.MetricsListen != "127.0.0.1:9100" || cfg.EventLogKeep != 2 || cfg.EventLogMaxSize != 0 {
		t.Errorf("valid flags: %+v, %v", cfg, err)
	}
}

// TestServeEventsToStdout: with --events -, the events are JSON lines on
// the standard output (which startServe shares with the text logs) and no
// events.jsonl is made.
func TestServeEventsToStdout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.43")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.43:%d", port), mailtest.Options{})
	spool := t.TempDir()
	p := startServe(t, spool, "--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--events", "-")

	conn, rw, err := openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if line, err := smtpSend(rw, "app@sender.test", "x@dest.test", "Subject: stdout\r\n\r\nhello\r\n"); err != nil || !strings.HasPrefix(line, "250") {
		t.Fatalf("message: %q %v", line, err)
	}
	rx.Wait(t, 1, 20*time.Second)
	testlib.WaitFor(t, "the delivered event on the standard output", func() bool {
		return strings.Contains(p.logs(), `"type":"delivered"`)
	})
	if _, err := os.Stat(filepath.Join(spool, "events.jsonl")); !os.IsNotExist(err) {
		t.Errorf("events.jsonl made with --events -: %v", err)
	}
}
