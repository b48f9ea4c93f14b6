package queue_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/spool"
	"corriere/core/testlib"
)

// TestOutcomeWaitsForRoom delivers a message while the spool is too full to
// record the delivery, and checks that the outcome is recorded once room
// returns, without delivering the message again.
func TestOutcomeWaitsForRoom(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	var free atomic.Uint64
	free.Store(1 << 30)
	w.stopQueue()
	if err := w.spool.Close(); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(spool.Options{Dir: w.dir, MinFree: 8 << 20,
		FreeSpace: func(string) (uint64, uint64, error) { return free.Load(), 1 << 40, nil }})
	if err != nil {
		t.Fatal(err)
	}
	w.spool = sp
	w.startQueue()

	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	m := testMessage(t, "s@s.test", "x@a.test")
	meta, entries, err := sp.Put(m, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Under the floor kept for settlements: nothing can be recorded.
	free.Store(512 << 10)
	probe := sp.Keyspace("test")
	testlib.WaitFor(t, "the spool to see the full disk", func() bool {
		return errors.Is(probe.Set("k", nil, false), spool.ErrNoSpace)
	})
	w.q.Add(meta, entries)
	rx.Wait(t, 1, 5*time.Second)
	if got := w.q.Pending(); got != 1 {
		t.Fatalf("pending = %d while the delivery cannot be recorded, want 1", got)
	}

	free.Store(1 << 30)
	w.waitDone(10 * time.Second)
	if got := len(rx.Messages()); got != 1 {
		t.Fatalf("delivered %d times, want once", got)
	}
	if got := w.events.Count(event.Delivered, "x@a.test"); got != 1 {
		t.Fatalf("delivered events = %d, want 1", got)
	}
	if n := sp.Messages(); n != 0 {
		t.Fatalf("spool holds %d messages after the delivery was recorded", n)
	}
}

func testMessage(t *testing.T, sender string, rcpts ...string) *message.Message {
	t.Helper()
	h, body, err := message.Parse([]byte("From: <" + sender + ">\r\nSubject: disk\r\n\r\nHello.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Header: h, Body: body, Tenant: "acme", Received: time.Now()}
	m.Sender = sender
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r})
	}
	return m
}
