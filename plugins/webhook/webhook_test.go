package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/httpin"
	"corriere/core/httpin/httpintest"
	"corriere/core/node"
	"corriere/core/outbox"
	"corriere/core/tenant"
	"corriere/core/testlib"
	"corriere/plugins/webhook"
)

const secret = "webhook-secret-0123456789"

// endpoint is a webhook receiver on loopback that checks each request's
// signature and keeps the events.
type endpoint struct {
	t   *testing.T
	srv *httptest.Server
	// hang, when set, holds every request until it is closed.
	hang chan struct{}

	mu       sync.Mutex
	events   []map[string]any
	requests int
}

func newEndpoint(t *testing.T, hang bool) *endpoint {
	e := &endpoint{t: t}
	if hang {
		e.hang = make(chan struct{})
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	if hang {
		t.Cleanup(func() { close(e.hang) })
	}
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts, _ := strconv.ParseInt(r.Header.Get(outbox.TimestampHeader), 10, 64)
	if r.Header.Get(outbox.SignatureHeader) != outbox.Sign(secret, ts, body) {
		e.t.Errorf("bad signature %q", r.Header.Get(outbox.SignatureHeader))
	}
	e.mu.Lock()
	e.requests++
	e.mu.Unlock()
	if e.hang != nil {
		<-e.hang
		return
	}
	var batch struct{ Events []map[string]any }
	if err := json.Unmarshal(body, &batch); err != nil {
		e.t.Errorf("batch %q: %v", body, err)
	}
	e.mu.Lock()
	e.events = append(e.events, batch.Events...)
	e.mu.Unlock()
}

// byType returns the events of type typ, by message id.
func (e *endpoint) byType(typ string) map[string]map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]map[string]any{}
	for _, ev := range e.events {
		if ev["type"] == typ {
			out[ev["msg_id"].(string)] = ev
		}
	}
	return out
}

func (e *endpoint) requestCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

func webhookField(url string, events string) string {
	return fmt.Sprintf("  webhooks = { { url = %q, secret = %q, events = { %s } } },\n", url, secret, events)
}

// inject sends one request of n recipients and returns the queue ids.
func inject(t *testing.T, f *httpintest.Fixture, key string, n int) []string {
	t.Helper()
	req := httpin.Request{Sender: "app@sender.test", Content: httpin.Content{From: "app@sender.test", Subject: "n{{.n}}", Text: "hello {{.n}}"}}
	for i := range n {
		req.Recipients = append(req.Recipients, httpin.Recipient{Email: fmt.Sprintf("r%d@d%d.test", i, i%4), Substitutions: map[string]any{"n": i}})
	}
	var ids []string
	for round := 0; len(req.Recipients) > 0; round++ {
		if round == 5 {
			t.Fatalf("%d recipients still refused", len(req.Recipients))
		}
		status, out := f.Post(t, key, httpintest.MustJSON(t, req))
		if status != 200 {
			t.Fatalf("status %d: %v", status, out)
		}
		var again []httpin.Recipient
		for i, m := range out["messages"].([]any) {
			m := m.(map[string]any)
			if id, ok := m["id"].(string); ok {
				ids = append(ids, id)
			} else {
				again = append(again, req.Recipients[i]) // temporary: a loaded machine's hook budget
			}
		}
		req.Recipients = again
	}
	return ids
}

// TestTenantWebhookGetsEveryDelivery: each of 1,000 injected recipients is
// delivered, and the tenant's webhook gets a signed delivered event for
// each, naming the queue id the API answered; the operator's sink gets
// them too, with the received events the tenant did not ask for.
func TestTenantWebhookGetsEveryDelivery(t *testing.T) {
	hook, sink := newEndpoint(t, false), newEndpoint(t, false)
	f := httpintest.StartNode(t, webhookField(hook.srv.URL, `"delivered", "bounced"`), func(dir string) {
		conf := fmt.Sprintf("return { url = %q, secret = %q }\n", sink.srv.URL, secret)
		if err := os.WriteFile(filepath.Join(dir, "eventsink.lua"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	const n = 1000
	ids := inject(t, f, f.Key, n)
	f.RX.Wait(t, n, 3*time.Minute)
	testlib.WaitForWithin(t, time.Minute, "a delivered event per message", func() bool { return len(hook.byType("delivered")) == n })
	got := hook.byType("delivered")
	for _, id := range ids {
		ev := got[id]
		if ev == nil || ev["tenant"] != "acme" || ev["id"] == "" || ev["rcpt"] == "" {
			t.Fatalf("delivered event of %s: %v", id, ev)
		}
	}
	if r := hook.byType("received"); len(r) != 0 {
		t.Errorf("the webhook got %d received events it did not ask for", len(r))
	}
	testlib.WaitForWithin(t, time.Minute, "the operator's sink", func() bool {
		return len(sink.byType("delivered")) == n && len(sink.byType("received")) == n
	})
}

// TestHangingWebhookDelaysNoOtherTenant: while the webhook of tenant
// "slow" holds its first request without answering, acme's webhook gets
// every one of its delivered events.
func TestHangingWebhookDelaysNoOtherTenant(t *testing.T) {
	hook, hung := newEndpoint(t, false), newEndpoint(t, true)
	// The held request must not time out during the test.
	saved := webhook.OutboxOptions
	webhook.OutboxOptions.Timeout = time.Hour
	t.Cleanup(func() { webhook.OutboxOptions = saved })
	slowKey, slowHash, err := tenant.NewAPIKey("slow")
	if err != nil {
		t.Fatal(err)
	}
	f := httpintest.StartNode(t, webhookField(hook.srv.URL, `"delivered"`), func(dir string) {
		slow := fmt.Sprintf("return {\n  sender_domains = { \"sender.test\" },\n  api_keys = { %q },\n%s}\n", slowHash, webhookField(hung.srv.URL, ""))
		if err := os.WriteFile(filepath.Join(dir, "tenants", "slow.lua"), []byte(slow), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	inject(t, f, slowKey, 50)
	testlib.WaitForWithin(t, time.Minute, "the slow tenant's webhook to hang", func() bool { return hung.requestCount() > 0 })
	ids := inject(t, f, f.Key, 50)
	testlib.WaitForWithin(t, 2*time.Minute, "acme's 50 delivered events", func() bool { return len(hook.byType("delivered")) == 50 })
	for _, id := range ids {
		if hook.byType("delivered")[id] == nil {
			t.Errorf("no delivered event for %s", id)
		}
	}
	if hung.requestCount() != 1 {
		t.Errorf("the hanging webhook got %d requests, want its first one still held", hung.requestCount())
	}
}

// TestDeadLettersOnTheAdminAPI: events an endpoint keeps refusing past
// MaxAge are listed, with the reason, at GET /api/webhooks/deadletters.
func TestDeadLettersOnTheAdminAPI(t *testing.T) {
	saved := webhook.OutboxOptions
	webhook.OutboxOptions.MaxAge = time.Nanosecond
	t.Cleanup(func() { webhook.OutboxOptions = saved })
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(refusing.Close)
	f := httpintest.StartNode(t, webhookField(refusing.URL, `"delivered"`), nil, func(c *node.Config) {
		c.AdminListen, c.AdminToken = "127.0.0.1:0", "admin-token"
	})
	inject(t, f, f.Key, 3)
	var got struct {
		DeadLetters []struct {
			ID       string
			Reason   string
			Endpoint outbox.Endpoint
			Payload  map[string]any
		} `json:"dead_letters"`
	}
	testlib.WaitForWithin(t, time.Minute, "3 dead letters", func() bool {
		req, _ := http.NewRequest("GET", "http://"+f.Node.AdminAddr()+"/api/webhooks/deadletters?tenant=acme", nil)
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return len(got.DeadLetters) == 3
	})
	for _, d := range got.DeadLetters {
		if d.ID == "" || d.Endpoint.URL != refusing.URL || d.Payload["type"] != "delivered" || d.Reason == "" {
			t.Errorf("dead letter %+v", d)
		}
	}
}

// suppress adds address to acme's suppression list through the admin API.
func suppress(t *testing.T, f *httpintest.Fixture, address string) {
	t.Helper()
	body := fmt.Sprintf(`{"tenant":"acme","address":%q,"category":"userunknown","reason":"test"}`, address)
	req, _ := http.NewRequest("POST", "http://"+f.Node.AdminAddr()+"/api/suppression", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("suppression add: status %d", resp.StatusCode)
	}
}

// TestInjectedMailMeetsTheSuppressionList: the API checks recipients as
// SMTP's RCPT does. A suppressed recipient of a tenant in "reject" mode is
// refused with the reply RCPT would get; in "drop" mode it is accepted,
// not delivered, and the webhook gets a suppressed event.
func TestInjectedMailMeetsTheSuppressionList(t *testing.T) {
	admin := func(c *node.Config) { c.AdminListen, c.AdminToken = "127.0.0.1:0", "admin-token" }
	body := []byte(`{"sender":"app@sender.test","recipients":[{"email":"gone@d0.test"},{"email":"here@d0.test"}],"content":{"from":"app@sender.test","text":"x"}}`)

	f := httpintest.StartNode(t, "", nil, admin)
	suppress(t, f, "gone@d0.test")
	status, out := f.Post(t, f.Key, body)
	msgs := out["messages"].([]any)
	refused, _ := msgs[0].(map[string]any)["error"].(map[string]any)
	if status != 200 || refused == nil || refused["code"].(float64) < 500 || msgs[1].(map[string]any)["id"] == nil {
		t.Fatalf("reject mode: status %d, %v; want gone@ refused, here@ accepted", status, out)
	}

	hook := newEndpoint(t, false)
	f = httpintest.StartNode(t, "  suppression = \"drop\",\n"+webhookField(hook.srv.URL, `"suppressed", "delivered"`), nil, admin)
	suppress(t, f, "gone@d0.test")
	status, out = f.Post(t, f.Key, body)
	msgs = out["messages"].([]any)
	gone := msgs[0].(map[string]any)
	if status != 200 || gone["dropped"] != true || gone["id"] == nil || out["accepted"] != float64(2) {
		t.Fatalf("drop mode: status %d, %v; want gone@ accepted and dropped", status, out)
	}
	testlib.WaitForWithin(t, time.Minute, "a suppressed and a delivered event", func() bool {
		return hook.byType("suppressed")[gone["id"].(string)] != nil && len(hook.byType("delivered")) == 1
	})
	if got := f.RX.Messages(); len(got) != 1 || got[0].To[0] != "here@d0.test" {
		t.Errorf("delivered %v, want only here@d0.test", got)
	}
}
