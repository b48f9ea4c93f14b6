package suppress

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/spool"
)

func TestRecorder(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := New(sp, nil)
	r := NewRecorder(l, nil)
	bus := &event.Bus{}
	bus.Subscribe(r)
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, e := range []*event.Event{
		{Type: event.Bounced, Tenant: "acme", Recipient: "Gone@dest.example", MsgID: "m1", Category: "userunknown", Hard: true, Reply: "550 5.1.1 no such user", Time: at},
		{Type: event.Bounced, Tenant: "acme", Recipient: "nodomain@nx.example", MsgID: "m2", Category: "hostunknown", Hard: true, Time: at},
		{Type: event.Bounced, Tenant: "acme", Recipient: "full@dest.example", Category: "mailboxfull", Time: at},
		{Type: event.Bounced, Tenant: "acme", Recipient: "blocked@dest.example", Category: "blocked", Time: at},
		{Type: event.Bounced, Tenant: "acme", Recipient: "away@dest.example", Category: "suspend", Time: at},
		// The policy decides, not the category: a userunknown its policy
		// calls soft is not suppressed, a mailboxfull it calls hard is.
		{Type: event.Bounced, Tenant: "acme", Recipient: "flaky@dest.example", MsgID: "m5", Category: "userunknown", Time: at},
		{Type: event.Bounced, Tenant: "acme", Recipient: "abandoned@dest.example", MsgID: "m6", Category: "mailboxfull", Hard: true, Time: at},
		{Type: event.Deferred, Tenant: "acme", Recipient: "later@dest.example", Category: "userunknown", Hard: true, Time: at},
		{Type: event.Expired, Tenant: "acme", Recipient: "old@dest.example", Category: "expired", Hard: true, Time: at},
		{Type: event.Complained, Tenant: "beta", Recipient: "angry@dest.example", MsgID: "m3", Reason: "abuse report from Yahoo", Time: at},
		// A second hard bounce of the same address keeps the first entry.
		{Type: event.Bounced, Tenant: "acme", Recipient: "gone@dest.example", MsgID: "m4", Category: "hasmoved", Hard: true, Time: at.Add(time.Hour)},
	} {
		bus.Emit(e)
	}
	r.Close()
	r.Close() // twice is fine
	bus.Emit(&event.Event{Type: event.Complained, Tenant: "beta", Recipient: "late@dest.example"})
	if r.Added() != 4 || r.Lost() != 0 {
		t.Errorf("added %d, lost %d; want 4, 0", r.Added(), r.Lost())
	}
	sp.Close()

	// The additions survive a reopen of the spool.
	sp, err = spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	l = New(sp, nil)
	want := map[string]Entry{
		"acme/gone@dest.example":      {Category: "userunknown", Source: SourceBounce, MsgID: "m1", Reason: "550 5.1.1 no such user"},
		"acme/nodomain@nx.example":    {Category: "hostunknown", Source: SourceBounce, MsgID: "m2"},
		"acme/abandoned@dest.example": {Category: "mailboxfull", Source: SourceBounce, MsgID: "m6"},
		"beta/angry@dest.example":     {Category: event.CategoryFeedback, Source: SourceComplaint, MsgID: "m3", Reason: "abuse report from Yahoo"},
	}
	got := map[string]Entry{}
	l.Scan(AllTenants, func(e Entry) error { got[e.Tenant+"/"+e.Address] = e; return nil })
	if len(got) != len(want) {
		t.Errorf("list = %+v", got)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.Category != w.Category || g.Source != w.Source || g.MsgID != w.MsgID || g.Reason != w.Reason || !g.Added.Equal(at) {
			t.Errorf("%s = %+v; want %+v added %s", k, g, w, at)
		}
	}
}

// stallingHandler is a slog.Handler that holds the first "address
// suppressed" record, and with it the recorder's worker, until release is
// closed. It counts the "queue full" warnings.
type stallingHandler struct {
	stalled chan struct{} // closed once the worker is held
	release chan struct{}
	held    atomic.Bool
	full    atomic.Int64
}

func (h *stallingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *stallingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *stallingHandler) WithGroup(string) slog.Handler            { return h }

func (h *stallingHandler) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Message == "suppression queue full: address not added":
		h.full.Add(1)
	case r.Message == "address suppressed" && h.held.CompareAndSwap(false, true):
		close(h.stalled)
		<-h.release
	}
	return nil
}

// TestRecorderQueueFull holds the recorder's worker while it writes the
// first address, so exactly QueueSize further additions fit in the queue:
// every one beyond is dropped, counted and logged, and the queued ones are
// still written once the worker moves on.
func TestRecorderQueueFull(t *testing.T) {
	const queueSize, emitted = 2, 50
	l, _ := openList(t, t.TempDir())
	h := &stallingHandler{stalled: make(chan struct{}), release: make(chan struct{})}
	r := NewRecorder(l, &RecorderOptions{QueueSize: queueSize, Logger: slog.New(h)})
	complaint := func(i int) *event.Event {
		return &event.Event{Type: event.Complained, Tenant: "acme", Recipient: fmt.Sprintf("r%d@dest.example", i)}
	}
	r.Emit(complaint(0))
	<-h.stalled
	for i := 1; i < emitted; i++ {
		r.Emit(complaint(i))
	}
	wantLost := int64(emitted - 1 - queueSize)
	if got := r.Lost(); got != wantLost {
		t.Errorf("lost %d while the worker was held; want %d (queue size %d)", got, wantLost, queueSize)
	}
	if got := h.full.Load(); got != wantLost {
		t.Errorf("%d queue-full warnings; want %d", got, wantLost)
	}
	close(h.release)
	r.Close()
	if got, want := r.Added(), int64(1+queueSize); got != want {
		t.Errorf("added %d; want %d (the held one and the queued ones)", got, want)
	}
	var got []string
	l.Scan(AllTenants, func(e Entry) error { got = append(got, e.Address); return nil })
	slices.Sort(got)
	if want := []string{"r0@dest.example", "r1@dest.example", "r2@dest.example"}; !slices.Equal(got, want) {
		t.Errorf("list holds %v; want %v", got, want)
	}
}

func BenchmarkRecorderEmit(b *testing.B) {
	sp, err := spool.Open(spool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	r := NewRecorder(New(sp, nil), nil)
	defer r.Close()
	e := &event.Event{Type: event.Delivered, Tenant: "acme", Recipient: "a@dest.example"}
	b.ReportAllocs()
	for b.Loop() {
		r.Emit(e)
	}
}
