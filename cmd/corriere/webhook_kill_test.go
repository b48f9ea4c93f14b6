package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/httpin"
	"corriere/core/mailtest"
	"corriere/core/tenant"
	"corriere/core/testlib"
)

// hookRecorder is a tenant's webhook endpoint: it keeps every event it
// receives; while holding is set it answers the first request and holds
// every later one without answering, as an endpoint that took the events
// and died before it could say so.
type hookRecorder struct {
	holding atomic.Bool
	release chan struct{}

	mu       sync.Mutex
	answered int
	held     int
	events   []map[string]any
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var batch struct{ Events []map[string]any }
	json.Unmarshal(body, &batch)
	h.mu.Lock()
	h.events = append(h.events, batch.Events...)
	if h.holding.Load() && h.answered > 0 {
		h.held++
		h.mu.Unlock()
		<-h.release
		return
	}
	h.answered++
	h.mu.Unlock()
}

func (h *hookRecorder) snapshot() (events []map[string]any, held int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...), h.held
}

// freeAddr returns a loopback address free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// outboxCounts reads the webhook outbox's pending and delivered events of
// tenant acme from the node's /metrics.
func outboxCounts(metricsAddr string) (pending, delivered int) {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for name, dst := range map[string]*int{
			`corriere_outbox_pending_events{outbox="webhook",tenant="acme"} `:         &pending,
			`corriere_outbox_delivered_events_total{outbox="webhook",tenant="acme"} `: &delivered,
		} {
			if v, ok := strings.CutPrefix(line, name); ok {
				f, _ := strconv.ParseFloat(v, 64)
				*dst = int(f)
			}
		}
	}
	return pending, delivered
}

// TestKillNineDuringWebhookDeliveryLosesNoEvent injects mail through the
// HTTP API of `corriere serve`, lets it be delivered, and kills the node
// with SIGKILL while a request to the tenant's webhook is in flight and
// the other delivered events wait in the outbox. After a restart on the
// same spool the webhook gets a delivered event for every message, and an
// event it gets twice carries the same idempotency key both times.
func TestKillNineDuringWebhookDeliveryLosesNoEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs corriere as a process")
	}
	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.42")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.42:%d", port), mailtest.Options{})
	hook := &hookRecorder{release: make(chan struct{})}
	hook.holding.Store(true)
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	t.Cleanup(func() { close(hook.release) })

	key, hash, err := tenant.NewAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	rules := unthrottledRules(t)
	acme := fmt.Sprintf("return {\n  sender_domains = { \"sender.test\" },\n  api_keys = { %q },\n  webhooks = { { url = %q, secret = %q, events = { \"delivered\" } } },\n}\n",
		hash, hookSrv.URL, "kill-nine-secret-0123456789")
	if err := os.WriteFile(filepath.Join(rules, "tenants", "acme.lua"), []byte(acme), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	httpAddr, metricsAddr := freeAddr(t), freeAddr(t)
	extra := []string{"--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--rules", rules, "--http-listen", httpAddr, "--metrics", metricsAddr}
	p := startServe(t, spool, extra...)

	const n = 300
	req := httpin.Request{Sender: "app@sender.test", Content: httpin.Content{From: "app@sender.test", Subject: "{{.n}}", Text: "hello"}}
	for i := range n {
		req.Recipients = append(req.Recipients, httpin.Recipient{Email: fmt.Sprintf("r%d@dest.test", i), Substitutions: map[string]any{"n": i}})
	}
	ids := map[string]bool{}
	testlib.WaitForWithin(t, 20*time.Second, "the HTTP API", func() bool {
		c, err := net.Dial("tcp", httpAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for round := 0; len(req.Recipients) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d recipients still refused", len(req.Recipients))
		}
		body, _ := json.Marshal(&req)
		hr, _ := http.NewRequest("POST", "http://"+httpAddr+httpin.InjectPath, bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		var out httpin.Response
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		var again []httpin.Recipient
		for i, m := range out.Messages {
			if m.ID == "" {
				again = append(again, req.Recipients[i]) // a temporary refusal of a loaded machine
				continue
			}
			ids[m.ID] = true
		}
		req.Recipients = again
	}
	rx.Wait(t, n, 3*time.Minute)
	testlib.WaitForWithin(t, time.Minute, "every delivered event in the outbox, a webhook request held", func() bool {
		pending, delivered := outboxCounts(metricsAddr)
		_, held := hook.snapshot()
		return pending+delivered == n && pending > 0 && held > 0
	})
	before, _ := hook.snapshot()
	p.kill()
	t.Logf("killed with %d of %d delivered events taken by the webhook", len(before), n)

	hook.holding.Store(false)
	p2 := startServe(t, spool, extra...)
	byMsg := func() map[string]bool {
		events, _ := hook.snapshot()
		got := map[string]bool{}
		for _, e := range events {
			got[e["msg_id"].(string)] = true
		}
		return got
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(byMsg()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered events after the restart\nlogs:\n%s", len(byMsg()), n, p2.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for id := range ids {
		if !byMsg()[id] {
			t.Errorf("no delivered event for message %s", id)
		}
	}
	// The same event (message, recipient, time) always has the same id.
	events, _ := hook.snapshot()
	idOf := map[string]string{}
	dups := 0
	for _, e := range events {
		k := fmt.Sprint(e["msg_id"], e["rcpt"], e["time"])
		if prev, ok := idOf[k]; ok {
			dups++
			if prev != e["id"] {
				t.Errorf("event %s sent with ids %v and %v", k, prev, e["id"])
			}
		}
		idOf[k] = e["id"].(string)
	}
	t.Logf("%d events, %d of them sent again after the restart", len(events), dups)
	if dups == 0 {
		t.Errorf("no event of the held request was sent again: the restart proved nothing")
	}
}
