package queue_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/spool"
)

// BenchmarkQueueScale measures what a large queue costs: a spool holding N
// recipients (one 2 KB message each), all deferred an hour ahead as after a
// failed attempt, at the receiver's domain.
//
// Each iteration restarts the queue on the spool, as a process restart
// would, and reports:
//   - recover-ms: Queue.Recover, from an open spool to every recipient
//     scheduled;
//   - heap-MB: the Go heap in use once recovered (after a GC);
//   - rss-MB: the process's resident memory then, Pebble's caches included;
//   - early-attempts: recipients tried before their recorded retry time
//     (must be 0).
//
// N is 100,000 by default; CORRIERE_SCALE_N sets it (1000000 for the
// million of issue 10):
//
//	CORRIERE_SCALE_N=1000000 go test -run XXX -bench QueueScale -benchtime 3x ./core/queue
func BenchmarkQueueScale(b *testing.B) {
	n := scaleN(b)
	lim := policy.Limits{MaxConnections: 10}
	w := newWorld(b, &policy.Default{Limits: &lim}, nil)
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{CountOnly: true})

	b.Logf("spooling %d recipients", n)
	body := []byte("Subject: news\r\nX-Kind: newsletter\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n")
	due := time.Now().Add(time.Hour)
	fillSpool(b, w.spool, n, body, due)
	b.ReportAllocs()
	b.ResetTimer()
	var recoverMs, heapMB, rssMB float64
	for i := 0; i < b.N; i++ {
		w.stopQueue()
		start := time.Now()
		w.startQueue() // Recover, then Start
		recoverMs += float64(time.Since(start).Milliseconds())
		b.StopTimer()
		if got := w.q.Pending(); got != int64(n) {
			b.Fatalf("recovered %d recipients, want %d", got, n)
		}
		time.Sleep(200 * time.Millisecond) // give an early retry pass its chance
		debug.FreeOSMemory()               // what filling the spool left behind is not the queue's
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapMB += float64(ms.HeapInuse) / (1 << 20)
		rssMB += rss(b) / (1 << 20)
		b.StartTimer()
	}
	b.ReportMetric(recoverMs/float64(b.N), "recover-ms")
	b.ReportMetric(heapMB/float64(b.N), "heap-MB")
	b.ReportMetric(rssMB/float64(b.N), "rss-MB")
	b.ReportMetric(float64(rx.Recipients()), "early-attempts")
	if rx.Recipients() != 0 {
		b.Errorf("%d recipients tried before their retry time", rx.Recipients())
	}
}

// BenchmarkQueueScaleRetrying measures the queue's memory while it retries
// a large backlog: N recipients (CORRIERE_SCALE_N, 100,000 by default) are
// due at once and the receiver defers every one of them. It reports the
// peak resident memory over ten seconds of retries, the recipients tried
// per second, and the time from the restart (recovery included) to the
// first attempt.
//
//	CORRIERE_SCALE_N=1000000 go test -run XXX -bench QueueScaleRetrying -benchtime 1x ./core/queue
func BenchmarkQueueScaleRetrying(b *testing.B) {
	n := scaleN(b)
	lim := policy.Limits{MaxConnections: 20}
	w := newWorld(b, &policy.Default{Limits: &lim}, func(o *queue.Options) { o.Retry = []time.Duration{time.Minute} })
	w.mx("big.test", "mx.big.test", "127.0.0.21")
	var rcpts, first atomic.Int64
	tempfail := func(string, int) error {
		rcpts.Add(1)
		first.CompareAndSwap(0, time.Now().UnixNano())
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: tempfail})
	body := []byte("Subject: news\r\nX-Kind: newsletter\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n")
	fillSpool(b, w.spool, n, body, time.Now())
	b.ResetTimer()
	var peak, tried, firstMs float64
	for i := 0; i < b.N; i++ {
		w.stopQueue()
		debug.FreeOSMemory()
		before := rcpts.Load()
		first.Store(0)
		start := time.Now()
		w.startQueue()
		for time.Since(start) < 10*time.Second {
			time.Sleep(100 * time.Millisecond)
			peak = max(peak, rss(b))
		}
		tried += float64(rcpts.Load()-before) / time.Since(start).Seconds()
		firstMs += float64(time.Unix(0, first.Load()).Sub(start).Milliseconds())
	}
	b.ReportMetric(firstMs/float64(b.N), "first-attempt-ms")
	b.ReportMetric(peak/(1<<20), "peak-rss-MB")
	b.ReportMetric(tried/float64(b.N), "tried/s")
}

func scaleN(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("CORRIERE_SCALE_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatalf("CORRIERE_SCALE_N: %v", err)
		}
	}
	return n
}

// fillSpool writes n one-recipient messages due at due, in batches of a
// thousand, as a bulk import would.
func fillSpool(b *testing.B, sp *spool.Spool, n int, content []byte, due time.Time) {
	b.Helper()
	h, body, err := message.Parse(content)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < n; {
		batch := sp.NewBatch()
		for j := 0; j < 1000 && i < n; j, i = j+1, i+1 {
			m := &message.Message{Header: h, Body: body, Class: message.Newsletter, Tenant: "acme", Received: now}
			m.Sender = "news@sender.test"
			m.Recipients = []message.Recipient{{Addr: fmt.Sprintf("r%d@big.test", i)}}
			if _, _, err := batch.Put(m, due); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// rss returns the process's resident set size in bytes.
func rss(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkBulkBounce measures `queue bounce` over CORRIERE_SCALE_N
// recipients (default 100,000) of one-recipient messages waiting for a
// retry: the recipients leave delivery and the order is recorded
// (s/action), then their entries go and a DSN per message is written in
// the background (s/settled, counted from the start of the action).
// Meanwhile another tenant's mail flows at the queue's capacity;
// other_rate_kept is its delivery rate until the last recipient is settled
// over its rate before, and other_rate_kept_action the same during the
// action alone.
//
//	CORRIERE_SCALE_N=100000 go test -run '^$' -bench BulkBounce -benchtime 1x ./core/queue
func BenchmarkBulkBounce(b *testing.B) {
	benchBulk(b, func(q *queue.Queue, ids []queue.EntryID) int {
		res, err := q.Bounce(ids, "bulk test")
		if err != nil {
			b.Fatal(err)
		}
		return res.Done
	})
}

// BenchmarkBulkDelete is BenchmarkBulkBounce for `queue delete`: no DSN.
//
//	CORRIERE_SCALE_N=100000 go test -run '^$' -bench BulkDelete -benchtime 1x ./core/queue
func BenchmarkBulkDelete(b *testing.B) {
	benchBulk(b, func(q *queue.Queue, ids []queue.EntryID) int {
		res, err := q.Delete(ids, "bulk test")
		if err != nil {
			b.Fatal(err)
		}
		return res.Done
	})
}

func benchBulk(b *testing.B, act func(*queue.Queue, []queue.EntryID) int) {
	n := scaleN(b)
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b, &policy.Default{}, nil)
		w.mx("big.test", "mx.big.test", "127.0.0.21")
		w.mx("sender.test", "mx.sender.test", "127.0.0.22")
		w.receiver("127.0.0.22", mailtest.Options{CountOnly: true})
		body := []byte("Subject: news\r\nX-Kind: newsletter\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n")
		fillSpool(b, w.spool, n, body, time.Now().Add(time.Hour))
		w.stopQueue()
		w.startQueue() // Recover: every recipient waits in the scheduler
		var list []spool.Entry
		if err := w.spool.Select(spool.Selector{Tenant: "acme"}, func(m *spool.Meta) bool {
			list = append(list, spool.Entry{MsgID: m.ID})
			return true
		}); err != nil {
			b.Fatal(err)
		}
		ids := make([]queue.EntryID, len(list))
		for i, e := range list {
			ids[i] = queue.EntryID{ID: e.MsgID}
		}
		// Another tenant's mail flows all along, as fast as the queue
		// delivers it: its rate during the action, against its rate
		// before, is what the action costs everyone else.
		w.mx("other.test", "mx.other.test", "127.0.0.23")
		other := w.receiver("127.0.0.23", mailtest.Options{CountOnly: true})
		stop := make(chan struct{})
		streamed := make(chan struct{})
		go func() {
			defer close(streamed)
			streamOtherTenant(b, w, other, stop)
		}()
		time.Sleep(2 * time.Second) // the stream's ramp-up
		before0, t0 := other.Recipients(), time.Now()
		time.Sleep(5 * time.Second)
		before := float64(other.Recipients()-before0) / time.Since(t0).Seconds()

		b.StartTimer()
		start := time.Now()
		during0 := other.Recipients()
		done := act(w.q, ids)
		elapsed := time.Since(start)
		duringAction := float64(other.Recipients()-during0) / elapsed.Seconds()
		for w.q.Depth().RemovalsWaiting > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		total := time.Since(start)
		during := float64(other.Recipients()-during0) / total.Seconds()
		b.StopTimer()
		close(stop)
		<-streamed
		b.ReportMetric(elapsed.Seconds(), "s/action")
		b.ReportMetric(total.Seconds(), "s/settled")
		b.ReportMetric(before, "other_msg/s_before")
		b.ReportMetric(duringAction/before, "other_rate_kept_action")
		b.ReportMetric(during/before, "other_rate_kept")
		if done != n {
			b.Fatalf("acted on %d of %d", done, n)
		}
		b.StartTimer()
	}
}

// streamOtherTenant keeps about 200 messages of tenant "other" to
// other.test in the queue until stop: more than the queue delivers at
// once, so the delivered rate is the queue's capacity for them.
func streamOtherTenant(b *testing.B, w *world, rx *mailtest.Receiver, stop <-chan struct{}) {
	h, body, err := message.Parse([]byte("Subject: order\r\n\r\nYour order shipped.\r\n"))
	if err != nil {
		b.Error(err)
		return
	}
	sent := 0
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if sent-rx.Recipients() >= 200 {
			time.Sleep(time.Millisecond)
			continue
		}
		m := &message.Message{Header: h, Body: body, Class: message.Transactional, Tenant: "other", Received: time.Now()}
		m.Sender = "shop@other-sender.test"
		m.Recipients = []message.Recipient{{Addr: fmt.Sprintf("c%d@other.test", i)}}
		meta, entries, err := w.spool.Put(m, time.Now())
		if err != nil {
			b.Error(err)
			return
		}
		w.q.Add(meta, entries)
		sent++
	}
}
