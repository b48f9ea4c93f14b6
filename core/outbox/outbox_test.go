package outbox

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/testlib"
)

// receiver is a webhook endpoint on loopback that checks signatures and
// records the events it took.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	// answer decides the status of each request; nil answers 200.
	answer atomic.Pointer[func(n int) int]

	mu       sync.Mutex
	requests int
	events   []map[string]any // taken (2xx) only
	seen     []map[string]any // every event of every request
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts, err := strconv.ParseInt(req.Header.Get(TimestampHeader), 10, 64)
	if err != nil || req.Header.Get(SignatureHeader) != Sign(r.secret, ts, body) {
		r.t.Errorf("request with a bad signature: %q at %q", req.Header.Get(SignatureHeader), req.Header.Get(TimestampHeader))
		w.WriteHeader(401)
		return
	}
	var batch struct{ Events []map[string]any }
	if err := json.Unmarshal(body, &batch); err != nil {
		r.t.Errorf("body %q: %v", body, err)
	}
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.seen = append(r.seen, batch.Events...)
	r.mu.Unlock()
	status := 200
	if f := r.answer.Load(); f != nil {
		status = (*f)(n)
	}
	if status == 200 {
		r.mu.Lock()
		r.events = append(r.events, batch.Events...)
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *receiver) setAnswer(f func(n int) int) { r.answer.Store(&f) }

func (r *receiver) taken() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

func (r *receiver) allSeen() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.seen...)
}

// secrets answers secret for every endpoint in eps.
func secrets(secret string, eps ...Endpoint) Secrets {
	return func(e Endpoint) (string, bool) {
		for _, ep := range eps {
			if ep == e {
				return secret, true
			}
		}
		return "", false
	}
}

func open(t *testing.T, dir string, opts Options) *Outbox {
	t.Helper()
	opts.Dir, opts.Name = dir, "test"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	o, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func payload(i int) []byte { return fmt.Appendf(nil, `{"type":"delivered","n":%d}`, i) }

// TestDeliversSignedBatchesInOrder: events are posted in batches, signed,
// in the order they were added, each with its id.
func TestDeliversSignedBatchesInOrder(t *testing.T) {
	rx := newReceiver(t, "s3cret-s3cret-s3cret")
	ep := Endpoint{Tenant: "acme", URL: rx.srv.URL}
	o := open(t, t.TempDir(), Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), BatchSize: 7})
	defer o.Close()
	for i := range 50 {
		if err := o.Add([]Endpoint{ep}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	testlib.WaitFor(t, "50 events", func() bool { return len(rx.taken()) == 50 })
	ids := map[string]bool{}
	for i, e := range rx.taken() {
		if e["n"] != float64(i) || e["type"] != "delivered" {
			t.Fatalf("event %d is %v", i, e)
		}
		ids[e["id"].(string)] = true
	}
	if len(ids) != 50 {
		t.Errorf("%d distinct ids, want 50", len(ids))
	}
	testlib.WaitFor(t, "no event pending", func() bool { return o.Pending(ep) == 0 })
}

// TestRetriesKeepTheirIDs: a failing endpoint gets the same events, with
// the same ids, until it takes them.
func TestRetriesKeepTheirIDs(t *testing.T) {
	rx := newReceiver(t, "s3cret-s3cret-s3cret")
	rx.setAnswer(func(n int) int {
		if n <= 3 {
			return 503
		}
		return 200
	})
	ep := Endpoint{Tenant: "acme", URL: rx.srv.URL}
	o := open(t, t.TempDir(), Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	defer o.Close()
	for i := range 5 {
		if err := o.Add([]Endpoint{ep}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	testlib.WaitFor(t, "5 events taken", func() bool { return len(rx.taken()) == 5 })
	idOf := map[float64]string{}
	for _, e := range rx.allSeen() {
		n, id := e["n"].(float64), e["id"].(string)
		if prev, ok := idOf[n]; ok && prev != id {
			t.Fatalf("event %v sent with ids %s and %s", n, prev, id)
		}
		idOf[n] = id
	}
	if len(rx.allSeen()) <= 5 {
		t.Fatalf("no retry: %d events seen", len(rx.allSeen()))
	}
}

// TestEventsSurviveARestart: events an endpoint could not take stay on
// disk across Close and Open, and are sent, with their ids, once it can.
func TestEventsSurviveARestart(t *testing.T) {
	rx := newReceiver(t, "s3cret-s3cret-s3cret")
	rx.setAnswer(func(int) int { return 500 })
	ep := Endpoint{Tenant: "acme", URL: rx.srv.URL}
	dir := t.TempDir()
	o := open(t, dir, Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	for i := range 20 {
		if err := o.Add([]Endpoint{ep}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	testlib.WaitFor(t, "a failed request", func() bool { return len(rx.allSeen()) > 0 })
	firstID := rx.allSeen()[0]["id"]
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	rx.setAnswer(func(int) int { return 200 })
	o = open(t, dir, Options{Secrets: secrets("s3cret-s3cret-s3cret", ep)})
	defer o.Close()
	testlib.WaitFor(t, "20 events after the restart", func() bool { return len(rx.taken()) == 20 })
	if got := rx.taken()[0]["id"]; got != firstID {
		t.Errorf("first event's id %v after the restart, %v before", got, firstID)
	}
	// New events do not reuse the sequence numbers of old ones.
	if err := o.Add([]Endpoint{ep}, payload(99)); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "the new event", func() bool { return len(rx.taken()) == 21 })
}

// TestOldEventsGoToTheDeadLetters: events still failing after MaxAge, those
// of a failing endpoint and those of an endpoint no longer configured, are
// moved to the dead letters with the reason, not before.
func TestOldEventsGoToTheDeadLetters(t *testing.T) {
	rx := newReceiver(t, "s3cret-s3cret-s3cret")
	rx.setAnswer(func(int) int { return 500 })
	ep := Endpoint{Tenant: "acme", URL: rx.srv.URL}
	gone := Endpoint{Tenant: "acme", URL: rx.srv.URL + "/removed"}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	o := open(t, t.TempDir(), Options{
		Secrets: secrets("s3cret-s3cret-s3cret", ep), MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAge: time.Hour,
		Now: func() time.Time { return time.Unix(0, now.Load()) },
	})
	defer o.Close()
	if err := o.Add([]Endpoint{ep, gone}, payload(1)); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "a failed request", func() bool { return len(rx.allSeen()) > 0 })
	if dl, _ := o.DeadLetters(ep); len(dl) != 0 {
		t.Fatalf("dead letters before MaxAge: %v", dl)
	}
	if dl, _ := o.DeadLetters(gone); len(dl) != 0 {
		t.Fatalf("dead letters of the endpoint not configured before MaxAge: %v", dl)
	}
	now.Add(int64(2 * time.Hour))
	for _, e := range []Endpoint{ep, gone} {
		testlib.WaitFor(t, "the old event given up, none pending", func() bool {
			dl, _ := o.DeadLetters(e)
			return len(dl) == 1 && dl[0].Reason == "not delivered within 1h0m0s" && o.Pending(e) == 0
		})
	}
}

// TestDeadLettersArePruned: dead letters older than DeadLetterTTL are
// deleted when the outbox opens.
func TestDeadLettersArePruned(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	ep := Endpoint{Tenant: "acme", URL: srv.URL}
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	dir := t.TempDir()
	o := open(t, dir, Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), MaxPending: 1, DeadLetterTTL: 24 * time.Hour, Now: clock})
	for i := range 3 {
		if err := o.Add([]Endpoint{ep}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if dl, _ := o.DeadLetters(ep); len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dl))
	}
	o.Close()
	now.Add(int64(25 * time.Hour))
	o = open(t, dir, Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), DeadLetterTTL: 24 * time.Hour, Now: clock})
	defer o.Close()
	testlib.WaitFor(t, "the old dead letters deleted", func() bool {
		dl, _ := o.DeadLetters(ep)
		return len(dl) == 0
	})
	if o.Pending(ep) != 1 {
		t.Errorf("%d pending, want the 1 event still waiting", o.Pending(ep))
	}
}

// TestMaxPendingBoundsAnEndpoint: events beyond MaxPending go straight to
// the dead letters.
func TestMaxPendingBoundsAnEndpoint(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	ep := Endpoint{Tenant: "acme", URL: srv.URL}
	o := open(t, t.TempDir(), Options{Secrets: secrets("s3cret-s3cret-s3cret", ep), MaxPending: 10})
	defer o.Close()
	for i := range 15 {
		if err := o.Add([]Endpoint{ep}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	dl, err := o.DeadLetters(ep)
	if err != nil || len(dl) != 5 || o.Pending(ep) != 10 {
		t.Fatalf("%d dead letters (%v), %d pending; want 5 and 10", len(dl), err, o.Pending(ep))
	}
}

// TestAHangingEndpointDelaysNoOther: while one tenant's endpoint holds a
// request without answering, another tenant's events are all delivered.
func TestAHangingEndpointDelaysNoOther(t *testing.T) {
	hung := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(hung) })
		<-release
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	rx := newReceiver(t, "s3cret-s3cret-s3cret")
	slowEP := Endpoint{Tenant: "slow", URL: slow.URL}
	fastEP := Endpoint{Tenant: "fast", URL: rx.srv.URL}
	o := open(t, t.TempDir(), Options{Secrets: secrets("s3cret-s3cret-s3cret", slowEP, fastEP), Timeout: time.Hour, BatchSize: 10})
	defer o.Close()
	if err := o.Add([]Endpoint{slowEP}, payload(0)); err != nil {
		t.Fatal(err)
	}
	<-hung
	for i := range 100 {
		if err := o.Add([]Endpoint{slowEP, fastEP}, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	testlib.WaitFor(t, "the fast tenant's 100 events", func() bool { return len(rx.taken()) == 100 })
	if o.Pending(slowEP) != 101 {
		t.Errorf("slow endpoint: %d pending, want 101 (its request still hangs)", o.Pending(slowEP))
	}
}

// BenchmarkAdd measures the synced write of one event for one endpoint,
// from 16 producers at once, as the event bus calls it.
func BenchmarkAdd(b *testing.B) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	b.Cleanup(srv.Close)
	b.Cleanup(func() { close(block) })
	ep := Endpoint{Tenant: "acme", URL: srv.URL}
	o, err := Open(Options{Dir: b.TempDir(), Name: "bench", Secrets: secrets("s", ep), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	p := []byte(`{"type":"delivered","msg_id":"0123456789abcdefghij","rcpt":"someone@example.com","tenant":"acme"}`)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := o.Add([]Endpoint{ep}, p); err != nil {
				b.Error(err)
			}
		}
	})
}
