// Package netlimit bounds the connections a server holds at once: a
// listener that answers the ones beyond the limit with a one-line reply
// and closes them, so that a flood of clients cannot exhaust descriptors
// or memory.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listener wraps a net.Listener and admits at most Max connections at once.
type Listener struct {
	net.Listener
	// Max is the most connections open at once.
	Max int64
	// Refusal is written to each connection refused ("421 ...\r\n").
	Refusal string
	// OnRefuse, when set, is called for each connection refused.
	OnRefuse func()

	active atomic.Int64
}

// Accept returns the next connection within the limit; connections beyond
// it get the Refusal and are closed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.Max {
			l.active.Add(-1)
			if l.OnRefuse != nil {
				l.OnRefuse()
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(l.Refusal)) // best effort before closing
			c.Close()
			continue
		}
		return &counted{Conn: c, l: l}, nil
	}
}

// Active returns how many admitted connections are open.
func (l *Listener) Active() int64 { return l.active.Load() }

// counted gives its place back when closed.
type counted struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *counted) Close() error {
	c.once.Do(func() { c.l.active.Add(-1) })
	return c.Conn.Close()
}
