// Package drain lets a server finish the work it has admitted when it
// shuts down, and admit nothing after: a Gate counts units of work (SMTP
// transactions, bounces being handled) and, once closed, refuses new ones
// and waits for those inside.
//
// Admission and closing are ordered by one lock, so a unit is either
// admitted before Close (and waited for) or refused: none slips in while
// Close is waiting.
package drain

import (
	"context"
	"errors"
	"sync"
)

// Gate admits units of work until it is closed. The zero value is open.
type Gate struct {
	mu     sync.Mutex
	closed bool
	inside sync.WaitGroup
}

// Enter admits one unit of work, or returns false once Close has begun.
// Every true must be matched by one Leave.
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.inside.Add(1)
	return true
}

// Leave ends a unit admitted by Enter.
func (g *Gate) Leave() { g.inside.Done() }

// Closed reports whether Close has begun.
func (g *Gate) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close refuses new work from now on; Wait waits for the work admitted.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait waits until every admitted unit has left, or ctx ends (it then
// returns ctx's error; the units go on regardless). Call it after Close,
// or more work may keep arriving.
func (g *Gate) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.inside.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown is the shutdown of a server guarded by g: it refuses new work,
// stops accepting connections (stopAccepting), waits for the admitted work
// until ctx ends, closes every session (closeSessions, which must make
// work blocked on a session return), and waits for the admitted work to
// leave. When it returns, nothing admitted runs any more. It returns ctx's
// error if the first wait ran out, and closeSessions' error.
func (g *Gate) Shutdown(ctx context.Context, stopAccepting func(), closeSessions func() error) error {
	g.Close()
	stopAccepting()
	err := g.Wait(ctx)
	cerr := closeSessions()
	_ = g.Wait(context.Background()) // cannot fail without a deadline
	return errors.Join(err, cerr)
}
