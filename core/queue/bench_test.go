package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/dns"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/smtpclient"
)

// percentile returns the p-th percentile (0 < p <= 1) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCriticalLatency measures how long critical mail waits behind a
// backlog of 100,000 newsletters to the same provider, on the same lane
// (one source, policy.Default): the critical-lane path of issue 5.
//
// Setup (not timed): 100,000 one-recipient newsletters to big.test are
// spooled in synced batches of 1,000 and handed to the queue; the lane
// allows 2 connections. Measurement starts once every newsletter is routed
// into the lane and deliveries are flowing. Two receivers:
//
//   - receiver=slow takes 5 ms over every newsletter's DATA, so the lane
//     drains about 300 a second: the backlog waits, the CPU is mostly idle.
//   - receiver=fast accepts at once, so the queue delivers newsletters as
//     fast as the CPU allows (over 10,000 a second on 2 cores): critical
//     mail competes for the CPU with the backlog's deliveries and spool
//     writes. A run must leave at least a tenth of the backlog.
//
// Each iteration spools one critical message (one recipient, its own synced
// spool write, as ingest does), hands it to the queue, and waits until the
// receiver sees its RCPT TO, then until its delivery is recorded, then
// pauses 0-4 ms so that the next one arrives at a different point of the
// newsletter transactions. The latency measured is from queue.Add (the
// moment ingest has the message durable and answers 250) to the receiver's
// RCPT TO for it: the first delivery attempt as the remote side sees it,
// one round trip after MAIL FROM, including the routing, the runner start,
// and (when every connection is busy with a newsletter, the usual case)
// the reserved runner's connect, greeting and EHLO. p50-ms and p99-ms are
// that latency. queue-p50-ms and queue-p99-ms are the queue's own share of
// it: from queue.Add until a runner dials for the message (or starts its
// transaction, on a connection already open), before any SMTP dialogue.
// put-p50-ms and put-p99-ms are the synced spool write before queue.Add,
// for a client-side view (end of DATA to first attempt = put + latency).
//
// Run with a fixed count, e.g.
//
//	go test -run XXX -bench CriticalLatency -benchtime 200x -count 3 ./core/queue
func BenchmarkCriticalLatency(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a backlog of 100,000 messages")
	}
	b.Run("receiver=slow", func(b *testing.B) { benchCriticalLatency(b, 5*time.Millisecond) })
	b.Run("receiver=fast", func(b *testing.B) { benchCriticalLatency(b, 0) })
}

func benchCriticalLatency(b *testing.B, newsDelay time.Duration) {
	const newsletters, conns = 100_000, 2
	lim := policy.Limits{MaxConnections: conns, MaxMessagesPerConnection: 1000, MaxRecipientsPerMessage: 100}
	tracer := &criticalTracer{at: map[string]time.Time{}}
	w := newWorld(b, &policy.Default{Limits: &lim}, func(o *queue.Options) {
		tracer.Transport = o.Transport
		o.Transport = tracer
	})
	w.dns.MustAdd("big.test. 300 IN MX 10 mx.big.test.", "mx.big.test. 300 IN A 127.0.0.21")

	// seen records when the receiver sees each critical recipient; a
	// critical recipient is never answered twice here.
	var (
		mu        sync.Mutex
		seen      = map[string]time.Time{}
		seenCh    = make(chan string, 16)
		delivered = make(chan string, 16)
	)
	rx := w.receiver("127.0.0.21", mailtest.Options{
		CountOnly: true,
		Rcpt: func(rcpt string, _ int) error {
			if strings.HasPrefix(rcpt, "crit") {
				at := time.Now()
				mu.Lock()
				seen[rcpt] = at
				mu.Unlock()
				nonBlockingSend(seenCh, rcpt)
			}
			return nil
		},
		Data: func(data []byte, _ int) error {
			if newsDelay > 0 && bytes.Contains(data, []byte("X-Kind: newsletter")) {
				time.Sleep(newsDelay)
			}
			return nil
		},
	})
	w.bus.Subscribe(event.SinkFunc(func(e *event.Event) {
		if e.Class == string(message.Critical) && e.Type == event.Delivered {
			nonBlockingSend(delivered, e.Recipient)
		}
	}))

	news := []byte("Subject: news\r\nX-Kind: newsletter\r\n\r\nnews\r\n")
	for i := 0; i < newsletters; i += 1000 {
		rcpts := make([]string, 1000)
		for k := range rcpts {
			rcpts[k] = fmt.Sprintf("r%d@big.test", i+k)
		}
		for _, m := range w.spoolBatch(message.Newsletter, news, rcpts) {
			w.q.Add(m.meta, m.entries)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st := w.q.Status()
		if len(st.Lanes) == 1 && st.Lanes[0].Queued[message.Newsletter]+st.Lanes[0].InFlight+rx.Recipients() >= newsletters && rx.Recipients() > 100 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("backlog not routed after a minute: %+v", st.Lanes)
		}
		time.Sleep(time.Millisecond)
	}

	crit := []byte("Subject: urgent\r\nX-Kind: critical\r\n\r\nurgent\r\n")
	h, body, err := message.Parse(crit)
	if err != nil {
		b.Fatal(err)
	}
	var latencies, puts, queued []time.Duration
	n, deliveredBefore := 0, rx.Recipients()
	for b.Loop() {
		rcpt := fmt.Sprintf("crit%d@big.test", n)
		n++
		m := &message.Message{Header: h, Body: body, Class: message.Critical, Tenant: "acme", Received: time.Now()}
		m.Sender = "alerts@sender.test"
		m.Recipients = []message.Recipient{{Addr: rcpt}}
		start := time.Now()
		meta, entries, err := w.spool.Put(m, start)
		if err != nil {
			b.Fatal(err)
		}
		added := time.Now()
		w.q.Add(meta, entries)
		if got := waitFor(b, seenCh, "RCPT TO", rcpt); got != rcpt {
			b.Fatalf("receiver saw %s, want %s", got, rcpt)
		}
		if got := waitFor(b, delivered, "delivery", rcpt); got != rcpt {
			b.Fatalf("delivered %s, want %s", got, rcpt)
		}
		mu.Lock()
		at := seen[rcpt]
		mu.Unlock()
		latencies = append(latencies, at.Sub(added))
		puts = append(puts, added.Sub(start))
		queued = append(queued, tracer.taken(rcpt).Sub(added))
		time.Sleep(time.Duration(n%5) * time.Millisecond)
	}
	b.StopTimer()
	b.Logf("%d critical messages; newsletters delivered meanwhile %d, still queued %d; receiver sessions %d",
		n, rx.Recipients()-n-deliveredBefore, w.q.Pending(), rx.Connections())
	if w.q.Pending() < newsletters/10 {
		b.Errorf("the backlog drained during the run (%d left): the figures do not hold for a backlog", w.q.Pending())
	}
	slices.Sort(latencies)
	slices.Sort(puts)
	slices.Sort(queued)
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
	b.ReportMetric(ms(percentile(queued, 0.50)), "queue-p50-ms")
	b.ReportMetric(ms(percentile(queued, 0.99)), "queue-p99-ms")
	b.ReportMetric(ms(percentile(puts, 0.50)), "put-p50-ms")
	b.ReportMetric(ms(percentile(puts, 0.99)), "put-p99-ms")
}

// nonBlockingSend sends v unless ch is full: a hook of the receiver or of
// the queue must never block on the benchmark.
func nonBlockingSend(ch chan<- string, v string) {
	select {
	case ch <- v:
	default:
	}
}

// criticalTracer wraps the transport to record when a runner takes up each
// critical recipient: the dial of the connection that carries it, or the
// start of its transaction on a connection already open.
type criticalTracer struct {
	queue.Transport
	mu sync.Mutex
	at map[string]time.Time
}

func (t *criticalTracer) Dial(ctx context.Context, tg queue.Target) (queue.Conn, error) {
	start := time.Now()
	c, err := t.Transport.Dial(ctx, tg)
	if err != nil {
		return nil, err
	}
	return &tracedConn{Conn: c, t: t, dialed: start}, nil
}

// taken returns when the runner took up rcpt.
func (t *criticalTracer) taken(rcpt string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at[rcpt]
}

type tracedConn struct {
	queue.Conn
	t      *criticalTracer
	dialed time.Time
	sent   bool
}

func (c *tracedConn) Send(ctx context.Context, env smtpclient.Envelope, content []byte) (*smtpclient.Result, error) {
	at := time.Now()
	if !c.sent {
		at = c.dialed
	}
	c.sent = true
	c.t.mu.Lock()
	for _, r := range env.Rcpts {
		if strings.HasPrefix(r.Addr, "crit") {
			c.t.at[r.Addr] = at
		}
	}
	c.t.mu.Unlock()
	return c.Conn.Send(ctx, env, content)
}

// waitFor receives from ch within 30 seconds.
func waitFor(b *testing.B, ch <-chan string, what, rcpt string) string {
	b.Helper()
	select {
	case got := <-ch:
		return got
	case <-time.After(30 * time.Second):
		b.Fatalf("no %s for %s within 30s", what, rcpt)
		return ""
	}
}

// BenchmarkSchedulerThroughput10kQueues measures how many recipients a
// second the queue routes, schedules and delivers when they are spread over
// 10,000 distinct ready queues: 10,000 domains dN.test, each with its own
// MX host mx.dN.test and so (policy.Default names a provider by the MX
// host's last two labels) its own provider and lane. The MX hosts share
// four loopback receivers that accept at once.
//
// b.N counts messages, one recipient each; message i goes to domain i mod
// 10,000, so with b.N of 10,000 or more every lane is in use. Not timed:
// the DNS answers are fetched once into the resolver's cache (this measures
// the scheduler, not the test DNS server), and the b.N messages are written
// to the spool. Timed: handing them all to the queue and waiting until
// every one is delivered and removed from the spool. rcpts/s is b.N over
// that time; peak-conns is the sum of the receivers' peak concurrent
// sessions. Messages to one domain come 10,000 apart, so a lane's runner
// has usually stopped lingering before its next message arrives: expect
// about 0.7 SMTP sessions per recipient, which is where most of the time
// goes (both ends of every session run in this process).
//
// Connections. Every ready lane wants its own connection; the queue's cap
// across lanes (Options.MaxConnections, 1000 by default) keeps 10,000 ready
// lanes from opening 10,000 sockets at once. Runners linger 100 ms, as in
// the tests, not the default 2 s.
//
//	go test -run XXX -bench SchedulerThroughput10kQueues -benchtime 50000x -count 3 ./core/queue
func BenchmarkSchedulerThroughput10kQueues(b *testing.B) {
	if testing.Short() {
		b.Skip("10,000 domains on loopback")
	}
	b.ReportAllocs()
	const domains = 10_000
	ips := []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"}
	w := newWorld(b, &policy.Default{}, nil)
	var rxs []*mailtest.Receiver
	for _, ip := range ips {
		rxs = append(rxs, w.receiver(ip, mailtest.Options{CountOnly: true}))
	}
	records := make([]string, 0, 2*domains)
	for d := range domains {
		records = append(records, fmt.Sprintf("d%d.test. 300 IN MX 10 mx.d%d.test.", d, d),
			fmt.Sprintf("mx.d%d.test. 300 IN A %s", d, ips[d%len(ips)]))
	}
	w.dns.MustAdd(records...)
	warmDNS(b, w.res, domains)

	content := []byte("Subject: hello\r\n\r\nHello.\r\n")
	var msgs []queued
	for i := 0; i < b.N; i += 1000 {
		rcpts := make([]string, 0, 1000)
		for k := i; k < min(b.N, i+1000); k++ {
			rcpts = append(rcpts, fmt.Sprintf("r%d@d%d.test", k, k%domains))
		}
		msgs = append(msgs, w.spoolBatch(message.Transactional, content, rcpts)...)
	}
	b.ResetTimer()
	start := time.Now()
	for _, m := range msgs {
		w.q.Add(m.meta, m.entries)
	}
	deadline := start.Add(5 * time.Minute)
	for w.q.Pending() > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d recipients still queued after 5 minutes", w.q.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got, peak, sessions := 0, 0, 0
	for _, rx := range rxs {
		got += rx.Recipients()
		peak += rx.PeakConnections()
		sessions += rx.Connections()
	}
	b.Logf("%d recipients over %d domains in %v: %d SMTP sessions, at most %d at once", b.N, min(b.N, domains), elapsed.Round(time.Millisecond), sessions, peak)
	if got != b.N {
		b.Fatalf("receivers accepted %d recipients, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rcpts/s")
	b.ReportMetric(float64(peak), "peak-conns")
}

// warmDNS looks up every dN.test MX and its address once, so that the
// resolver answers from its cache during the measurement.
func warmDNS(b *testing.B, res *dns.Resolver, domains int) {
	b.Helper()
	ctx := context.Background()
	var failed atomic.Int32
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for d := range domains {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			mx, err := res.LookupMX(ctx, fmt.Sprintf("d%d.test", d))
			if err == nil && len(mx.Hosts) > 0 {
				_, err = res.LookupIP(ctx, mx.Hosts[0].Host)
			}
			if err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d DNS lookups failed", n, domains)
	}
}
