package inspect

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/spool"
)

// queued puts a message of tenant with the given recipients in sp.
func queued(t *testing.T, sp *spool.Spool, tenant, campaign string, class message.Class, due time.Time, rcpts ...string) string {
	t.Helper()
	raw := "From: news@shop.example\r\nSubject: spring sale\r\nMessage-ID: <x@shop.example>\r\n\r\nHello\r\n"
	h, body, err := message.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Header: h, Body: body, Tenant: tenant, AuthUser: tenant, Class: class, Campaign: campaign, Received: time.Now()}
	m.Sender = "news@shop.example"
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r})
	}
	if _, _, err := sp.Put(m, due); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func setup(t *testing.T) (*Inspector, *luart.Engine, *spool.Spool) {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	pol, err := luart.New(luart.Options{ScriptsDir: "../../scripts", RulesDir: "../../rules"})
	if err != nil {
		t.Fatal(err)
	}
	return &Inspector{Spool: sp, Providers: pol}, pol, sp
}

func TestList(t *testing.T) {
	in, _, sp := setup(t)
	now := time.Now()
	a := queued(t, sp, "example", "spring", message.Newsletter, now.Add(-time.Second), "a@gmail.com", "b@libero.it")
	b := queued(t, sp, "other", "", message.Transactional, now.Add(time.Hour), "c@gmail.com")
	// b's recipient has been tried once at Gmail and waits for a retry.
	es, err := sp.Entries(b)
	if err != nil {
		t.Fatal(err)
	}
	es[0].Attempts, es[0].LastMX, es[0].LastReply, es[0].LastSource = 1, "gmail-smtp-in.l.google.com", "451 4.7.28 try later", "192.0.2.7"
	if err := sp.Update(es[0]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Filter
		want []string // recipients
	}{
		{"all", Filter{}, []string{"a@gmail.com", "b@libero.it", "c@gmail.com"}},
		{"tenant", Filter{Tenant: "example"}, []string{"a@gmail.com", "b@libero.it"}},
		{"campaign", Filter{Campaign: "spring"}, []string{"a@gmail.com", "b@libero.it"}},
		{"class", Filter{Class: message.Transactional}, []string{"c@gmail.com"}},
		{"domain", Filter{Domain: "GMAIL.com"}, []string{"a@gmail.com", "c@gmail.com"}},
		{"rcpt", Filter{Rcpt: "b@libero.it"}, []string{"b@libero.it"}},
		{"provider of the last attempt", Filter{Provider: "gmail"}, []string{"c@gmail.com"}},
		{"source", Filter{Source: "192.0.2.7"}, []string{"c@gmail.com"}},
		{"ready", Filter{State: StateReady}, []string{"a@gmail.com", "b@libero.it"}},
		{"deferred", Filter{State: StateDeferred}, []string{"c@gmail.com"}},
		{"older than an hour", Filter{OlderThan: time.Hour}, nil},
		{"limit", Filter{Limit: 2}, []string{"a@gmail.com", "b@libero.it"}},
	}
	for _, tc := range tests {
		got, err := in.List(tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var rcpts []string
		for _, r := range got {
			rcpts = append(rcpts, r.Address)
		}
		if strings.Join(rcpts, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.name, rcpts, tc.want)
		}
	}
	got, _ := in.List(Filter{Rcpt: "c@gmail.com"})
	if r := got[0]; r.ID != b || r.Tenant != "other" || r.Attempts != 1 || r.LastReply != "451 4.7.28 try later" || r.Provider != "gmail" {
		t.Errorf("c@gmail.com listed as %+v", r)
	}
	if got, _ := in.List(Filter{Tenant: "example", Limit: 1}); len(got) != 1 || got[0].ID != a || got[0].State != StateReady {
		t.Errorf("first of example's: %+v, want message %s, ready", got, a)
	}
	for _, bad := range []Filter{{State: "paused"}, {Class: "spam"}, {Limit: -1}} {
		if _, err := in.List(bad); err == nil {
			t.Errorf("filter %+v accepted", bad)
		}
	}
}

func TestExplainOverHTTP(t *testing.T) {
	in, pol, sp := setup(t)
	id := queued(t, sp, "example", "spring", message.Newsletter, time.Now().Add(time.Hour), "a@gmail.com")
	es, _ := sp.Entries(id)
	es[0].Attempts, es[0].LastMX, es[0].LastReply = 1, "gmail-smtp-in.l.google.com", "451 4.7.28 Our system has detected an unusual rate"
	if err := sp.Update(es[0]); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range AdminHandlers(in, pol, nil) {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var x Explanation
	get(t, srv.URL+"/api/messages/"+id, http.StatusOK, &x)
	if x.ID != id || x.Tenant != "example" || !strings.Contains(x.Header, "Subject: spring sale") || len(x.Recipients) != 1 {
		t.Fatalf("explanation: %+v", x)
	}
	steps := map[string]Step{}
	for _, s := range x.Recipients[0].Trace {
		steps[s.Hook] = s
	}
	for _, hook := range []string{"classify", "route", "shape", "on_response"} {
		if _, ok := steps[hook]; !ok {
			t.Errorf("no %s step in the trace %+v", hook, x.Recipients[0].Trace)
		}
	}
	if s := steps["route"]; !strings.Contains(s.Decided, "provider gmail") || !strings.Contains(s.Where, ".lua:") {
		t.Errorf("route step %+v: want provider gmail and file:line", s)
	}
	// Tenant example overrides classify: the trace points at its line.
	if s := steps["classify"]; !strings.Contains(s.Where, "tenants/example.lua:") || !strings.Contains(s.Where, "override") {
		t.Errorf("classify step %+v: want the tenant override's file:line", s)
	}
	if s := steps["on_response"]; !strings.Contains(s.Decided, "451 4.7.28") {
		t.Errorf("on_response step %+v does not judge the last reply", s)
	}

	var list ListResponse
	get(t, srv.URL+"/api/recipients?tenant=example&limit=10", http.StatusOK, &list)
	if len(list.Recipients) != 1 || list.Recipients[0].ID != id {
		t.Errorf("list: %+v", list)
	}
	get(t, srv.URL+"/api/recipients?state=paused", http.StatusBadRequest, nil)
	get(t, srv.URL+"/api/messages/nosuchid", http.StatusNotFound, nil)
}

func get(t *testing.T, url string, code int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, code)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilterQueryRoundTrip(t *testing.T) {
	f := Filter{Tenant: "acme", Campaign: "c", Class: message.Newsletter, Provider: "gmail", Domain: "d.example",
		Rcpt: "a@d.example", Source: "192.0.2.1", State: StateDeferred, OlderThan: 2 * time.Hour, Limit: 100}
	got, err := FilterFromQuery(f.Query())
	if err != nil || got != f {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, f)
	}
}
