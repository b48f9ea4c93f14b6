package smtpclient

import (
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a go-smtp server on loopback that records what it receives and
// rejects the recipients in reject with 550 5.1.1.
type sink struct {
	addr   string
	reject map[string]bool
	// discard makes the sink count messages without keeping them.
	discard bool

	mu    sync.Mutex
	msgs  []sinkMessage
	count int
	peers []net.Addr
}

// sinkMessage is one message as the sink received it.
type sinkMessage struct {
	from     string
	mailOpts smtp.MailOptions
	rcpts    []string
	rcptOpts []smtp.RcptOptions
	data     []byte
	tls      bool
}

// startSink starts a sink; configure, if not nil, adjusts the server before
// it starts.
func startSink(tb testing.TB, configure func(*smtp.Server)) *sink {
	tb.Helper()
	k := &sink{reject: map[string]bool{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		k.mu.Lock()
		k.peers = append(k.peers, c.Conn().RemoteAddr())
		k.mu.Unlock()
		return &sinkSession{sink: k, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if configure != nil {
		configure(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	k.addr = ln.Addr().String()
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return k
}

// messages returns the messages received so far.
func (k *sink) messages() []sinkMessage {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]sinkMessage(nil), k.msgs...)
}

// sinkSession is one SMTP session of a sink.
type sinkSession struct {
	sink *sink
	conn *smtp.Conn
	msg  sinkMessage
}

func (s *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	s.msg = sinkMessage{from: from, mailOpts: *opts}
	return nil
}

func (s *sinkSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.sink.reject[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.msg.rcpts = append(s.msg.rcpts, to)
	s.msg.rcptOpts = append(s.msg.rcptOpts, *opts)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	if s.sink.discard {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		s.sink.mu.Lock()
		s.sink.count++
		s.sink.mu.Unlock()
		return nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = data
	_, s.msg.tls = s.conn.TLSConnectionState()
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, s.msg)
	s.sink.count++
	s.sink.mu.Unlock()
	return nil
}

func (s *sinkSession) Reset()        { s.msg = sinkMessage{} }
func (s *sinkSession) Logout() error { return nil }
