package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/queue"
	"corriere/core/testlib"
)

// TestConnectionCapAcrossLanes: twelve providers, each allowed two
// connections, share a queue-wide cap of three; critical mail still goes
// out at once on the reserve while the cap is full.
func TestConnectionCapAcrossLanes(t *testing.T) {
	t.Parallel()
	const domains, perDomain, limit = 12, 5, 3
	lim := policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 100, MaxRecipientsPerMessage: 10}
	tr := &countingTransport{}
	w := newWorld(t, &policy.Default{Limits: &lim}, func(o *queue.Options) {
		o.MaxConnections = limit
		tr.Transport = o.Transport
		o.Transport = tr
	})
	for i := range domains {
		// Each domain has its own MX host name, so its own provider.
		w.mx(fmt.Sprintf("d%d.test", i), fmt.Sprintf("mx.d%d.test", i), "127.0.0.21")
	}
	w.mx("urgent.test", "mx.urgent.test", "127.0.0.22")
	slow := w.receiver("127.0.0.21", mailtest.Options{Data: func([]byte, int) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	}})
	urgent := w.receiver("127.0.0.22", mailtest.Options{})
	for i := range domains * perDomain {
		w.send("news@sender.test", 0, message.RetHdrs, fmt.Sprintf("r%d@d%d.test", i, i%domains))
	}
	// Wait until the cap is full, then send critical mail elsewhere.
	testlib.WaitFor(t, fmt.Sprintf("the queue to open %d connections", limit), func() bool { return w.q.Status().Connections >= limit })
	w.sendAs(message.Critical, "alert@sender.test", 0, message.RetHdrs, "ops@urgent.test")
	urgent.Wait(t, 1, 5*time.Second)
	if left := w.q.Pending(); left < int64(domains*perDomain/2) {
		t.Errorf("critical mail waited for the backlog: only %d recipients left when it arrived", left)
	}
	w.waitDone(30 * time.Second)
	// Counted where the queue opens and closes them: a receiver sees a
	// closing connection a moment after the queue has let it go.
	if got := tr.peak.Load(); got > limit+1 {
		t.Errorf("peak %d connections across lanes, cap %d and one critical", got, limit)
	}
	if slow.PeakConnections() < 2 {
		t.Errorf("peak %d connections at the providers: the cap should be used, not just respected", slow.PeakConnections())
	}
	if n := w.events.Count(event.Delivered, ""); n != domains*perDomain+1 {
		t.Errorf("%d delivered, want %d", n, domains*perDomain+1)
	}
}

// countingTransport counts the connections the queue holds open.
type countingTransport struct {
	queue.Transport
	open, peak atomic.Int64
}

func (t *countingTransport) Dial(ctx context.Context, tg queue.Target) (queue.Conn, error) {
	c, err := t.Transport.Dial(ctx, tg)
	if err != nil {
		return nil, err
	}
	n := t.open.Add(1)
	for p := t.peak.Load(); n > p && !t.peak.CompareAndSwap(p, n); p = t.peak.Load() {
	}
	return &countedConn{Conn: c, open: &t.open}, nil
}

// countedConn takes itself off the count when closed.
type countedConn struct {
	queue.Conn
	open   *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if !c.closed.Swap(true) {
		c.open.Add(-1)
	}
	return err
}

// reserveWorld is a queue whose one queue-wide connection is held by a
// slow newsletter lane (hogMessages to hog.test, 50 ms each until
// hurry), with two more providers, c1.test and c2.test, for critical mail.
type reserveWorld struct {
	*world
	hog, c1, c2 *mailtest.Receiver
	hogDelay    atomic.Int64 // of each hog.test transaction
}

// hurry lets the slow lane finish at full speed, once the test has seen
// what it needed while the lane held the cap.
func (w *reserveWorld) hurry() { w.hogDelay.Store(0) }

const hogMessages = 40

func newReserveWorld(t *testing.T, linger time.Duration) *reserveWorld {
	lim := policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 100, MaxRecipientsPerMessage: 10}
	w := newWorld(t, &policy.Default{Limits: &lim}, func(o *queue.Options) {
		o.MaxConnections = 1
		if linger > 0 {
			o.Linger = linger
		}
	})
	w.mx("hog.test", "mx.hog.test", "127.0.0.21")
	w.mx("c1.test", "mx.c1.test", "127.0.0.22")
	w.mx("c2.test", "mx.c2.test", "127.0.0.23")
	rw := &reserveWorld{world: w,
		c1: w.receiver("127.0.0.22", mailtest.Options{}),
		c2: w.receiver("127.0.0.23", mailtest.Options{}),
	}
	rw.hogDelay.Store(int64(50 * time.Millisecond))
	rw.hog = w.receiver("127.0.0.21", mailtest.Options{Data: func([]byte, int) error {
		time.Sleep(time.Duration(rw.hogDelay.Load()))
		return nil
	}})
	for i := range hogMessages {
		w.sendAs(message.Newsletter, "news@sender.test", 0, message.RetHdrs, fmt.Sprintf("r%d@hog.test", i))
	}
	testlib.WaitFor(t, "the slow lane to hold the connection", func() bool { return w.q.Status().Connections >= 1 })
	return rw
}

// critical sends one critical message to ops@domain.
func (w *reserveWorld) critical(domain string) {
	w.sendAs(message.Critical, "alert@sender.test", 0, message.RetHdrs, "ops@"+domain)
}

// TestCriticalReserveCarriesCriticalOnly: with the queue-wide cap held by
// a slow newsletter lane, critical mail takes the reserve, the newsletters
// queued behind it in its lane do not ride on that connection, and the
// next critical message finds the reserve free again.
func TestCriticalReserveCarriesCriticalOnly(t *testing.T) {
	t.Parallel()
	w := newReserveWorld(t, 0)
	w.critical("c1.test")
	for i := range 40 {
		w.sendAs(message.Newsletter, "news@sender.test", 0, message.RetHdrs, fmt.Sprintf("n%d@c1.test", i))
	}
	w.c1.Wait(t, 1, 5*time.Second)
	w.critical("c2.test")
	w.c2.Wait(t, 1, 5*time.Second)
	if got := len(w.hog.Messages()); got >= hogMessages {
		t.Errorf("the second critical message waited until the slow lane finished (%d of %d delivered)", got, hogMessages)
	}
	if got := len(w.c1.Messages()); got > 1+2 {
		t.Errorf("%d messages reached c1.test while the slow lane held the cap: newsletters rode the critical reserve", got)
	}
	w.hurry()
	w.waitDone(30 * time.Second)
}

// TestCriticalReserveNeverIdles: a connection on the critical reserve is
// closed as soon as no critical mail waits, even when runners linger, so
// the next critical message to another provider takes the reserve at once.
func TestCriticalReserveNeverIdles(t *testing.T) {
	t.Parallel()
	w := newReserveWorld(t, 10*time.Second)
	w.critical("c1.test")
	w.c1.Wait(t, 1, 5*time.Second)
	w.critical("c2.test")
	w.c2.Wait(t, 1, 15*time.Second)
	if got := len(w.hog.Messages()); got >= hogMessages {
		t.Errorf("the second critical message waited for the first one's lingering connection (the slow lane finished meanwhile: %d of %d)", got, hogMessages)
	}
	w.hurry()
	w.waitDone(30 * time.Second)
}
