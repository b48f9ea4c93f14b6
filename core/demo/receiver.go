package demo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/smtpserve"
)

// inbound is one message the sender-side receiver accepted.
type inbound struct {
	from  string
	rcpts []string
	peer  string // client IP
	data  []byte
	at    time.Time
}

// receiver is the MX of the senders' domains (negozio-esempio.it and
// corriere-smarthost.it resolve to 127.0.0.1 in the default world): the
// DSNs Corriere sends to the shop and the bounces and complaint reports the
// simulated providers send later all arrive here. It accepts everything.
type receiver struct {
	ln  net.Listener
	srv *smtp.Server
	wg  sync.WaitGroup

	mu   sync.Mutex
	msgs []inbound
}

// startReceiver serves on ln.
func startReceiver(ln net.Listener, log *slog.Logger) *receiver {
	r := &receiver{ln: ln}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		peer, _, _ := net.SplitHostPort(c.Conn().RemoteAddr().String())
		return &receiverSession{r: r, peer: peer}, nil
	}))
	r.srv.Domain = "mx.corriere-smarthost.it"
	r.srv.MaxMessageBytes = 10 << 20
	r.srv.MaxRecipients = 1000
	r.srv.ReadTimeout = time.Minute
	r.srv.WriteTimeout = time.Minute
	r.srv.ErrorLog = smtpserve.Log{Logger: log, Level: slog.LevelDebug} // mostly clients that went away
	r.wg.Go(func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("sender-side receiver stopped", "err", err)
		}
	})
	return r
}

// messages returns what arrived so far.
func (r *receiver) messages() []inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]inbound(nil), r.msgs...)
}

// close stops the server.
func (r *receiver) close() error {
	err := r.srv.Close()
	r.wg.Wait()
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

type receiverSession struct {
	r     *receiver
	peer  string
	from  string
	rcpts []string
}

// Mail starts a transaction.
func (s *receiverSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.rcpts = from, nil
	return nil
}

// Rcpt accepts any recipient.
func (s *receiverSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data keeps the message.
func (s *receiverSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("demo: receiver: %w", err)
	}
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, inbound{from: s.from, rcpts: s.rcpts, peer: s.peer, data: data, at: time.Now()})
	s.r.mu.Unlock()
	return nil
}

// Reset discards the transaction.
func (s *receiverSession) Reset() { s.from, s.rcpts = "", nil }

// Logout ends the session.
func (s *receiverSession) Logout() error { return nil }
