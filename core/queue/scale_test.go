package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
)

// TestRetryTimeKeptAcrossRestart checks that a recipient deferred before a
// restart is not tried again before its recorded retry time.
func TestRetryTimeKeptAcrossRestart(t *testing.T) {
	w := newWorld(t, nil, func(o *queue.Options) { o.Retry = []time.Duration{time.Hour} })
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	greylist := func(string, int) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	}
	rx := w.receiver("127.0.0.21", mailtest.Options{Rcpt: greylist})
	w.send("s@sender.test", 0, "", "r1@a.test", "r2@a.test")
	deadline := time.Now().Add(10 * time.Second)
	for w.q.Status().Scheduled < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("recipients not deferred; status %+v", w.q.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	tried := rx.Connections()
	w.restart()
	if p := w.q.Pending(); p != 2 {
		t.Fatalf("after restart the queue holds %d recipients, want 2", p)
	}
	// Give an early retry pass every chance to happen.
	time.Sleep(300 * time.Millisecond)
	if st := w.q.Status(); st.Scheduled != 2 || rx.Connections() != tried {
		t.Fatalf("after restart: %d scheduled (want 2), %d connections (want %d): retried before the recorded retry time", st.Scheduled, rx.Connections(), tried)
	}
}

// TestLaneBacklogBounded checks that a throttled lane holds at most
// MaxLaneBacklog recipients in memory while the rest wait in the
// scheduler, and that every recipient is still delivered.
func TestLaneBacklogBounded(t *testing.T) {
	const n, backlog = 300, 20
	lim := policy.Limits{MaxConnections: 1, PerSecond: 200, Burst: 1}
	w := newWorld(t, &policy.Default{Limits: &lim}, func(o *queue.Options) { o.MaxLaneBacklog = backlog })
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{CountOnly: true})
	handOver := w.sendBatch(0, n, message.Newsletter, []byte("Subject: news\r\n\r\nnews\r\n"))
	handOver()
	peak := 0
	deadline := time.Now().Add(30 * time.Second)
	for w.q.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d recipients; status %+v", w.q.Pending(), w.q.Status())
		}
		for _, l := range w.q.Status().Lanes {
			peak = max(peak, l.Queued[message.Newsletter])
		}
		time.Sleep(time.Millisecond)
	}
	// Routers that check the backlog at the same moment may each add one
	// job of one recipient.
	if limit := backlog + w.opts.RouterWorkers; peak > limit {
		t.Errorf("the lane held %d recipients at once, want at most %d", peak, limit)
	}
	if got := rx.Recipients(); got != n {
		t.Errorf("receiver got %d recipients, want %d", got, n)
	}
	t.Logf("peak lane backlog %d (cap %d)", peak, backlog)
}

// TestMaxReadyBoundsLoadedEntries checks that after a restart the
// scheduler loads due entries from the spool no faster than they settle:
// at most MaxReady recipients are in memory on their way to delivery.
func TestMaxReadyBoundsLoadedEntries(t *testing.T) {
	const n, ready = 400, 25
	w := newWorld(t, nil, func(o *queue.Options) { o.MaxReady = ready })
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	slow := func([]byte, int) error { time.Sleep(2 * time.Millisecond); return nil }
	rx := w.receiver("127.0.0.21", mailtest.Options{Data: slow})
	// Spooled but not handed over: the restart's recovery finds them due.
	rcpts := make([]string, n)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("r%d@big.test", i)
	}
	w.spoolBatch(message.Newsletter, []byte("Subject: news\r\n\r\nnews\r\n"), rcpts)
	w.restart()
	peak := int64(0)
	deadline := time.Now().Add(30 * time.Second)
	for w.q.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue still holds %d recipients; status %+v", w.q.Pending(), w.q.Status())
		}
		st := w.q.Status()
		peak = max(peak, st.Pending-int64(st.Scheduled))
		time.Sleep(time.Millisecond)
	}
	if peak > ready {
		t.Errorf("%d recipients in memory at once, want at most %d", peak, ready)
	}
	if got := len(rx.Messages()); got != n {
		t.Errorf("receiver got %d messages, want %d", got, n)
	}
	t.Logf("peak in memory %d (MaxReady %d)", peak, ready)
}
