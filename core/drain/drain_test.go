package drain

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	if !g.Enter() {
		t.Fatal("an open gate refused work")
	}
	g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with work inside: %v, want the deadline", err)
	}
	if !g.Closed() || g.Enter() {
		t.Fatal("a closed gate admitted work")
	}
	g.Leave()
	if err := g.Wait(context.Background()); err != nil {
		t.Fatalf("Wait with nothing inside: %v", err)
	}
}

// TestGateRace: under concurrent Enter and Close, when Wait returns no unit
// is inside and none is admitted after (run with -race).
func TestGateRace(t *testing.T) {
	for range 50 {
		var g Gate
		var inside, late atomic.Int64
		var closed atomic.Bool
		var workers sync.WaitGroup
		for range 4 {
			workers.Go(func() {
				for g.Enter() {
					if closed.Load() {
						late.Add(1)
					}
					inside.Add(1)
					time.Sleep(10 * time.Microsecond)
					inside.Add(-1)
					g.Leave()
				}
			})
		}
		time.Sleep(time.Millisecond)
		g.Close()
		if err := g.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		if n := inside.Load(); n != 0 {
			t.Fatalf("%d units inside after Close returned", n)
		}
		workers.Wait()
		if n := late.Load(); n != 0 {
			t.Fatalf("%d units admitted after Close returned", n)
		}
	}
}

// TestShutdown: work blocked on a session is waited for past the
// deadline, once the sessions are closed.
func TestShutdown(t *testing.T) {
	var g Gate
	sessionClosed := make(chan struct{})
	var left atomic.Bool
	if !g.Enter() {
		t.Fatal("an open gate refused work")
	}
	go func() {
		<-sessionClosed // blocked on its session until it is closed
		left.Store(true)
		g.Leave()
	}()
	stopped := false
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := g.Shutdown(ctx, func() { stopped = true }, func() error {
		close(sessionClosed)
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if !stopped || !left.Load() || g.Enter() {
		t.Errorf("stopped accepting %v, work left %v, closed %v", stopped, left.Load(), g.Closed())
	}
}
