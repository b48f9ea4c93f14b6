package queue_test

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestOperatorSuspendAndResume checks an operator's suspension of a
// provider holds its mail back, with a suspended event naming the reason,
// and that resuming delivers what waited.
func TestOperatorSuspendAndResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("held.test", "mx.held.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "first@held.test")
	testlib.WaitFor(t, "the first delivery", func() bool { return w.events.Count(event.Delivered, "") == 1 })
	provider := w.events.Of(event.Delivered)[0].Provider

	if n, err := w.q.Suspend(queue.Scope{Provider: provider}, w.now().Add(time.Hour), "maintenance"); err != nil || n != 1 {
		t.Fatalf("Suspend: %d, %v", n, err)
	}
	evs := w.events.Of(event.Suspended)
	if len(evs) != 1 || evs[0].Provider != provider || evs[0].Reason != "operator: maintenance" {
		t.Errorf("suspended events: %+v", evs)
	}
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "second@held.test")
	testlib.WaitFor(t, "the second message waiting in the suspended lane", func() bool {
		for _, l := range w.q.Depth().Lanes {
			if l.Provider == provider && l.Suspended && l.Ready[1] == 1 {
				return true
			}
		}
		return false
	})
	if got := len(rx.Messages()); got != 1 {
		t.Fatalf("%d messages arrived during the suspension, want 1", got)
	}
	if n, err := w.q.Resume(queue.Scope{Provider: provider}); err != nil || n != 1 {
		t.Errorf("Resume ended %d suspensions, want 1", n)
	}
	rx.Wait(t, 2, 10*time.Second)
	testlib.WaitFor(t, "a resumed event", func() bool { return len(w.events.Of(event.Resumed)) == 1 })
	for _, bad := range []queue.Scope{{}, {Provider: "p", Tenant: "t"}, {Campaign: "c"}} {
		if _, err := w.q.Suspend(bad, time.Now(), "x"); err == nil {
			t.Errorf("Suspend(%+v) accepted", bad)
		}
	}
}

// TestOperatorHoldsATenant checks a suspension by tenant holds its mail
// back while another tenant's goes on, and that resuming delivers it.
func TestOperatorHoldsATenant(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	w.mx("dest.test", "mx.dest.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	if n, err := w.q.Suspend(queue.Scope{Tenant: "acme"}, w.now().Add(time.Hour), "billing"); err != nil || n != 1 {
		t.Fatalf("Suspend: %d, %v", n, err)
	}
	w.send("app@sender.test", message.NotifyNever, message.RetHdrs, "held@dest.test") // tenant acme
	h, body, err := message.Parse([]byte("From: <app@other.test>\r\nSubject: free\r\n\r\nHello.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Header: h, Body: body, Class: message.Transactional, Tenant: "other", Received: w.now()}
	m.Sender = "app@other.test"
	m.Recipients = []message.Recipient{{Addr: "free@dest.test"}}
	meta, entries, err := w.spool.Put(m, w.now())
	if err != nil {
		t.Fatal(err)
	}
	w.q.Add(meta, entries)
	testlib.WaitFor(t, "the other tenant's message", func() bool { return len(rx.Messages()) >= 1 })
	if got := rx.Messages(); len(got) != 1 || got[0].To[0] != "free@dest.test" {
		t.Fatalf("arrived during the hold: %+v", got)
	}
	if n, err := w.q.Resume(queue.Scope{Tenant: "acme"}); err != nil || n != 1 {
		t.Errorf("Resume: %d, %v", n, err)
	}
	rx.Wait(t, 2, 15*time.Second)
}
