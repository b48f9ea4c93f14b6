package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"corriere/core/luart"
	"corriere/core/queue"
)

type fakePolicy struct {
	gen    uint64
	refuse error
}

func (p *fakePolicy) Status() luart.Status { return luart.Status{Generation: p.gen} }
func (p *fakePolicy) Reload() error {
	if p.refuse != nil {
		return p.refuse
	}
	p.gen++
	return nil
}

type fakeQueue struct{}

func (fakeQueue) Status() queue.Status { return queue.Status{Pending: 7} }

func TestAPI(t *testing.T) {
	dir := t.TempDir()
	pol := &fakePolicy{gen: 1}
	s, err := Start(Options{Addr: "127.0.0.1:0", StateDir: dir, Policy: pol, Queue: fakeQueue{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	c, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var st Status
	if err := c.Get(ctx, "/api/status", &st); err != nil || st.Queue.Pending != 7 || st.Policy.Generation != 1 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	var res ReloadResult
	if err := c.Post(ctx, "/api/policy/reload", &res); err != nil || !res.Accepted || res.Policy.Generation != 2 {
		t.Fatalf("reload = %+v, %v", res, err)
	}
	pol.refuse = errors.New("scripts/route.lua:3: syntax error")
	res = ReloadResult{}
	if err := c.Post(ctx, "/api/policy/reload", &res); err == nil || res.Accepted || res.Error != "scripts/route.lua:3: syntax error" || res.Policy.Generation != 2 {
		t.Fatalf("refused reload = %+v, %v", res, err)
	}

	bad := &Client{Addr: c.Addr, Token: "wrong"}
	var out map[string]string
	if err := bad.Get(ctx, "/api/status", &out); err == nil || out["error"] == "" {
		t.Fatalf("wrong token accepted: %v %v", out, err)
	}
	resp, err := http.Get("http://" + c.Addr + "/api/queue")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d", resp.StatusCode)
	}
}

func TestExtraHandlers(t *testing.T) {
	dir := t.TempDir()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"hello": r.URL.Query().Get("name")})
	})
	s, err := Start(Options{Addr: "127.0.0.1:0", StateDir: dir, Policy: &fakePolicy{}, Queue: fakeQueue{},
		Handlers: map[string]http.Handler{"GET /api/hello": hello}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	c, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := c.Get(context.Background(), "/api/hello?name=corriere", &out); err != nil || out["hello"] != "corriere" {
		t.Fatalf("extra handler = %v, %v", out, err)
	}
	resp, err := http.Get("http://" + c.Addr + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("extra handler without token: status %d, want 401", resp.StatusCode)
	}

	for _, tc := range []struct {
		name     string
		handlers map[string]http.Handler
	}{
		{"outside /api/", map[string]http.Handler{"GET /hello": hello}},
		{"built-in path", map[string]http.Handler{"GET /api/queue/more": hello}},
		{"bad pattern", map[string]http.Handler{"GET /api/{": hello}},
		{"nil handler", map[string]http.Handler{"GET /api/x": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(Options{Addr: "127.0.0.1:0", StateDir: t.TempDir(), Policy: &fakePolicy{}, Queue: fakeQueue{}, Handlers: tc.handlers})
			if err == nil {
				s.Close(context.Background())
				t.Fatal("Start accepted the handlers")
			}
			t.Log(err)
		})
	}
}
