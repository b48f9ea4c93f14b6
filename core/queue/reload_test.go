package queue_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/testlib"
)

// TestLoweredConnectionLimitSheds lowers a lane's connection limit from 3 to
// 2 while it has a backlog, by rewriting rules/providers.lua and reloading
// as the node does. The excess runner leaves after its transaction in
// flight, whether the runners are busy sending or holding their connections
// while they wait for the rate; from then on the receiver never sees more
// than 2 sessions at once, and the rest of the backlog still goes out.
func TestLoweredConnectionLimitSheds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits string // the lane's limits, without connections
		finish string // limits for the rest of the backlog ("": the same)
		slow   time.Duration
		n      int
	}{
		// Runners deliver back to back: no one ever waits in take. The
		// backlog would last 4s at 3 connections, many times what the
		// shedding takes; once the limit is lowered, transactions get fast
		// to finish it.
		{"busy backlog", "messages_per_connection = 1000", "", 20 * time.Millisecond, 600},
		// A burst of 3 opens 3 connections (each transaction is slow
		// enough for the next message to find the others busy), then each
		// runner holds its connection for 8.6s waiting for the rate (7 a
		// minute): the reload must reach runners inside waitRate. A
		// faster rate then lets the rest go without waiting.
		{"waiting for the rate", "messages_per_connection = 1000, per_minute = 7, burst = 3",
			"messages_per_connection = 1000, per_minute = 600", 300 * time.Millisecond, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			providers := func(conns int, limits string) string {
				return acmeProviders(fmt.Sprintf("{ connections = %d, %s }", conns, limits), `{}`)
			}
			pol, dir := luaPolicyIn(t, map[string]string{"rules/providers.lua": providers(3, tt.limits)}, nil, nil, nil)
			w := newWorld(t, pol, nil)
			reload := func(content string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, "rules/providers.lua"), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := pol.Reload(); err != nil {
					t.Fatal(err)
				}
				w.q.PolicyChanged()
			}
			w.mx("acme.test", "mx.acme.test", "127.0.0.21")
			var slowness atomic.Int64
			slowness.Store(int64(tt.slow))
			slow := func([]byte, int) error { time.Sleep(time.Duration(slowness.Load())); return nil }
			rx := w.receiver("127.0.0.21", mailtest.Options{Data: slow})
			w.sendMany(tt.n, "acme.test")

			// Wait until the lane holds its 3 connections and has used them
			// (when waiting for the rate, every runner now waits in
			// waitRate).
			testlib.WaitFor(t, "3 connections used", func() bool {
				return rx.PeakConnections() >= 3 && len(rx.Messages()) >= 3
			})
			reloaded := time.Now()
			reload(providers(2, tt.limits))
			// The status counts a runner until its connection is closed.
			testlib.WaitFor(t, "the lane down to 2 connections", func() bool {
				st := w.q.Status()
				return len(st.Lanes) == 1 && st.Lanes[0].Connections <= 2 && st.Lanes[0].Limits.MaxConnections == 2
			})
			shed := time.Now()
			t.Logf("down to 2 connections %v after the reload", shed.Sub(reloaded).Round(time.Millisecond))
			if q := w.q.Pending(); q == 0 {
				t.Fatal("the backlog was gone before the limit was lowered: nothing proven")
			}
			slowness.Store(0)
			if tt.finish != "" {
				reload(providers(2, tt.finish))
			}
			w.waitDone(60 * time.Second)
			if p := rx.PeakConnectionsSince(shed); p > 2 {
				t.Errorf("%d concurrent connections after the limit was lowered to 2", p)
			}
			if got := len(rx.Messages()); got != tt.n {
				t.Errorf("delivered %d of %d", got, tt.n)
			}
		})
	}
}

// TestReloadKeepsRate reloads the policy every 50ms while a lane sends a
// backlog of two seconds at 50 messages a second with a burst of 10: a
// reload whose limits did not change must not grant a fresh burst, so no
// second carries more than the rate plus one burst (a fresh burst at each
// of the second's 20 reloads would be 200 more).
func TestReloadKeepsRate(t *testing.T) {
	t.Parallel()
	lim := policy.Limits{MaxConnections: 2, MaxMessagesPerConnection: 1000, PerSecond: 50, Burst: 10}
	w := newWorld(t, &policy.Default{Limits: &lim}, nil)
	w.mx("acme.test", "mx.acme.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	const n = 110
	w.sendMany(n, "acme.test")
	stop := make(chan struct{})
	reloads := make(chan int)
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		count := 0
		for {
			select {
			case <-stop:
				reloads <- count
				return
			case <-t.C:
				w.q.PolicyChanged()
				count++
			}
		}
	}()
	w.waitDone(30 * time.Second)
	close(stop)
	count := <-reloads
	var ts []time.Time
	for _, m := range rx.Messages() {
		ts = append(ts, m.At)
	}
	// 50 a second plus the burst of 10, and one for the receiver's jitter.
	busiest := maxInWindow(ts, time.Second)
	if busiest > 61 {
		t.Errorf("%d messages in one second with %d reloads, limit 50/s and a burst of 10", busiest, count)
	}
	t.Logf("%d messages, %d reloads, busiest second %d", len(ts), count, busiest)
}

// TestCriticalReserveOfHourlyVolume: newsletters use up what they may of a
// source's hourly volume at a provider (90 of 100: rules/providers.lua keeps
// a tenth for critical mail by default); critical mail queued then still
// leaves at once.
func TestCriticalReserveOfHourlyVolume(t *testing.T) {
	t.Parallel()
	pol := luaPolicy(t, map[string]string{
		"rules/providers.lua": acmeProviders(`{ connections = 2, per_hour = 100 }`, `{}`),
	}, nil, nil, nil)
	w := newWorld(t, pol, nil)
	w.mx("acme.test", "mx.acme.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	for i := range 100 {
		w.sendAs(message.Newsletter, "news@sender.test", 0, "", fmt.Sprintf("n%d@acme.test", i))
	}
	// Wait until the newsletters have used their share: the remaining ones
	// wait for the next hour, holding the lane's two runners.
	testlib.WaitForWithin(t, 30*time.Second, "newsletters out of hourly volume", func() bool {
		st := w.q.Status()
		n := len(rx.Messages())
		return n >= 90 && len(st.Lanes) == 1 && (n == 100 || st.Lanes[0].InFlight == 2)
	})

	queued := time.Now()
	for i := range 5 {
		w.sendAs(message.Critical, "alerts@sender.test", 0, "", fmt.Sprintf("c%d@acme.test", i))
	}
	critical := func() (crit, news int) {
		for _, m := range rx.Messages() {
			if strings.HasPrefix(m.To[0], "c") {
				crit++
			} else {
				news++
			}
		}
		return crit, news
	}
	testlib.WaitForWithin(t, 20*time.Second, "5 critical messages delivered after newsletters used their hourly share", func() bool {
		c, _ := critical()
		return c == 5
	})
	t.Logf("5 critical messages delivered %v after they were queued", time.Since(queued).Round(time.Millisecond))
	if _, news := critical(); news > 90 {
		t.Errorf("%d newsletters delivered: the critical reserve of 10 of 100 was not kept", news)
	}
	if n := w.events.Count(event.Delivered, ""); n != 95 {
		t.Errorf("%d delivered events, want 95", n)
	}
	st := w.q.Status()
	if len(st.Lanes) != 1 || st.Lanes[0].Limits.CriticalReserve != policy.DefaultCriticalReserve {
		t.Errorf("status does not show the critical reserve: %+v", st.Lanes)
	}
}
