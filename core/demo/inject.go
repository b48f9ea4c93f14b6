package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// submission is what ingest answered for one recipient.
type submission struct {
	// accepted is set when RCPT TO got 250.
	accepted bool
	// acked is set when the message then got 250 after DATA: from here on
	// Corriere is responsible for the recipient.
	acked bool
	// refusal is the reply that refused the recipient or its message.
	refusal string
}

// injector submits the workload over SMTP with AUTH, from several
// connections per tenant at once, as the tenants' applications would.
type injector struct {
	addr      string
	passwords map[string]string
	helo      map[string]string

	mu       sync.Mutex
	results  map[string]*submission // by recipient
	sent     int                    // messages submitted
	acked    int                    // messages acknowledged with 250
	finished bool
}

// connsPerTenant is how many SMTP connections each tenant keeps open.
var connsPerTenant = map[string]int{tenantShop: 3, tenantPlatform: 1}

func newInjector(addr string, passwords map[string]string) *injector {
	return &injector{
		addr: addr, passwords: passwords, results: map[string]*submission{},
		helo: map[string]string{tenantShop: "app." + shopDomain, tenantPlatform: "app.ricette-online.it"},
	}
}

// run submits every message at its time after start (messages are in
// time order within a tenant) and returns when all are submitted or ctx
// ends.
func (in *injector) run(ctx context.Context, wl *workload, start time.Time) {
	queues := map[string]chan *message{}
	var wg sync.WaitGroup
	for tenant, n := range connsPerTenant {
		ch := make(chan *message)
		queues[tenant] = ch
		for range n {
			wg.Go(func() {
				w := &submitter{in: in, tenant: tenant}
				defer w.close()
				for m := range ch {
					w.submit(ctx, m)
				}
			})
		}
	}
	for _, m := range wl.messages {
		if d := time.Until(start.Add(m.at)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case queues[m.tenant] <- m:
		case <-ctx.Done():
		}
	}
	for _, ch := range queues {
		close(ch)
	}
	wg.Wait()
	in.mu.Lock()
	in.finished = true
	in.mu.Unlock()
}

// progress returns how many messages were submitted and acknowledged, and
// whether the injection is over.
func (in *injector) progress() (sent, acked int, finished bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sent, in.acked, in.finished
}

// snapshot returns a copy of the per-recipient results.
func (in *injector) snapshot() map[string]submission {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]submission, len(in.results))
	for r, s := range in.results {
		out[r] = *s
	}
	return out
}

// submitter is one client connection of a tenant.
type submitter struct {
	in     *injector
	tenant string
	c      *smtp.Client
}

// submit sends one message and records the answer for each recipient.
// Failures are recorded, not retried: what was not acknowledged is not
// Corriere's responsibility.
func (s *submitter) submit(ctx context.Context, m *message) {
	res := make([]*submission, len(m.rcpts))
	for i := range res {
		res[i] = &submission{}
	}
	acked := false
	defer func() {
		s.in.mu.Lock()
		defer s.in.mu.Unlock()
		for i, r := range m.rcpts {
			s.in.results[r] = res[i]
		}
		s.in.sent++
		if acked {
			s.in.acked++
		}
	}()
	refuseAll := func(err error) {
		for _, r := range res {
			if r.refusal == "" {
				r.refusal = describe(err)
			}
			r.acked = false
		}
	}
	if s.c == nil {
		if err := s.connect(ctx); err != nil {
			refuseAll(err)
			return
		}
	}
	if err := s.c.Mail(m.from, nil); err != nil {
		refuseAll(err)
		s.after(err)
		return
	}
	n := 0
	for i, r := range m.rcpts {
		if err := s.c.Rcpt(r, nil); err != nil {
			res[i].refusal = describe(err)
			if !isReply(err) {
				refuseAll(err)
				s.after(err)
				return
			}
			continue
		}
		res[i].accepted = true
		n++
	}
	if n == 0 {
		s.after(s.c.Reset())
		return
	}
	w, err := s.c.Data()
	if err == nil {
		if _, err = w.Write(m.data); err == nil {
			err = w.Close()
		} else {
			w.Close()
		}
	}
	if err != nil {
		refuseAll(err)
		s.after(err)
		return
	}
	for _, r := range res {
		r.acked = r.accepted
	}
	acked = true
}

// after resets the session after a refusal, or drops a broken connection.
func (s *submitter) after(err error) {
	if err == nil {
		return
	}
	if isReply(err) {
		if s.c.Reset() == nil {
			return
		}
	}
	s.close()
}

func (s *submitter) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.in.addr)
	if err != nil {
		return fmt.Errorf("demo: connect to Corriere: %w", err)
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = time.Minute
	if err := c.Hello(s.in.helo[s.tenant]); err != nil {
		c.Close()
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", s.tenant, s.in.passwords[s.tenant])); err != nil {
		c.Close()
		return err
	}
	s.c = c
	return nil
}

func (s *submitter) close() {
	if s.c != nil {
		if s.c.Quit() != nil {
			s.c.Close()
		}
		s.c = nil
	}
}

// isReply reports whether err is an SMTP reply (the session goes on)
// rather than a broken connection.
func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// describe formats an SMTP reply as "550 5.7.1 text", or any other error.
func describe(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.EnhancedCode == smtp.NoEnhancedCode || se.EnhancedCode == (smtp.EnhancedCode{}) {
			return fmt.Sprintf("%d %s", se.Code, se.Message)
		}
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err.Error()
}
