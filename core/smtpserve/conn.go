package smtpserve

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a connection as the Runner hands it to go-smtp. It keeps the
// read deadline within the first-command timeout until the client has sent
// a whole line, can bound each read of a message transfer (LimitReads),
// and can close itself once the next reply is written (CloseAfterReply).
type Conn struct {
	net.Conn

	// firstDeadline bounds every read until the first line has arrived;
	// zero means no bound.
	firstDeadline time.Time
	gotLine       atomic.Bool
	limits        atomic.Pointer[readLimits]

	mu         sync.Mutex
	closeAfter bool
}

// readLimits are the deadlines of LimitReads.
type readLimits struct {
	idle time.Duration
	end  time.Time
}

// LimitReads makes each read wait at most idle, and none go past end,
// until the next SetReadDeadline (go-smtp sets one before each command
// line). go-smtp sets a single deadline before DATA and none during the
// transfer, and its DATA reader fills the whole buffer it is given, so
// only the connection itself can bound every read: without this a steady
// slow client is cut off after the idle timeout however active it is.
func (c *Conn) LimitReads(idle time.Duration, end time.Time) {
	c.limits.Store(&readLimits{idle: idle, end: end})
}

// Read reads from the connection and notes the first complete line.
func (c *Conn) Read(p []byte) (int, error) {
	if l := c.limits.Load(); l != nil {
		dl := time.Now().Add(l.idle)
		if dl.After(l.end) {
			dl = l.end
		}
		if err := c.Conn.SetReadDeadline(dl); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.gotLine.Load() && bytes.IndexByte(p[:n], '\n') >= 0 {
		c.gotLine.Store(true)
	}
	return n, err
}

// SetReadDeadline ends LimitReads and sets the read deadline, no later
// than the first-command deadline while the client has not sent a line
// yet: a client that connects and stays silent frees its place early.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.limits.Store(nil)
	if !c.firstDeadline.IsZero() && !c.gotLine.Load() && (t.IsZero() || t.After(c.firstDeadline)) {
		t = c.firstDeadline
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines, the read one as SetReadDeadline does.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Write writes to the connection, then closes it if CloseAfterReply asked
// for it.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	closing := c.closeAfter
	c.mu.Unlock()
	if closing {
		c.Conn.Close()
	}
	return n, err
}

// CloseAfterReply makes the connection close once the next write is done:
// a session that must end (a lockout, a transfer cut in the middle) still
// tells the client why. go-smtp writes each reply line with one Write, so
// a one-line reply is never cut; replies that end a session are one line.
func (c *Conn) CloseAfterReply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeAfter = true
}

// connListener wraps the admitted connections in Conn.
type connListener struct {
	net.Listener
	firstCommand time.Duration
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &Conn{Conn: c}
	if l.firstCommand > 0 {
		sc.firstDeadline = time.Now().Add(l.firstCommand)
	}
	return sc, nil
}
