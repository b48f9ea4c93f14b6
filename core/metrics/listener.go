package metrics

import (
	"net"
	"sync"
)

// CountSessions returns ln counting the connections it accepts, and those
// open, as inbound SMTP sessions.
func (m *Metrics) CountSessions(ln net.Listener) net.Listener {
	return &countingListener{Listener: ln, m: m}
}

type countingListener struct {
	net.Listener
	m *Metrics
}

// Accept implements net.Listener.
func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.m.sessionsIn.Inc()
	l.m.sessionsOpen.Inc()
	return &countedConn{Conn: c, m: l.m}, nil
}

// countedConn leaves the open sessions once, however often it is closed.
type countedConn struct {
	net.Conn
	m    *Metrics
	once sync.Once
}

// Close implements net.Conn.
func (c *countedConn) Close() error {
	c.once.Do(c.m.sessionsOpen.Dec)
	return c.Conn.Close()
}
