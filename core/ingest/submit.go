package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"

	"github.com/emersion/go-smtp"

	"corriere/core/address"
	"corriere/core/extension"
	"corriere/core/message"
	"corriere/core/reply"
	"corriere/core/tenant"
)

// Submission is a message handed to the server outside an SMTP session, by
// the HTTP injection API. Submit checks and handles it exactly as a
// message that arrives over SMTP: the tenant's sender domains, the
// recipient checks (suppression), Classify, Rewrite, the stages (DKIM),
// and a synced spool write.
type Submission struct {
	// Sender is the envelope sender; "" is the null sender.
	Sender string
	// Recipients are the envelope recipients.
	Recipients []string
	// Raw is the RFC 5322 message, every line ending in CRLF.
	Raw []byte
}

// Origin is who submits: an authenticated tenant, from a client address,
// over a protocol.
type Origin struct {
	// Tenant is the authenticated tenant. Required.
	Tenant *tenant.Tenant
	// Client is the client's address, for the Received field and the log.
	Client netip.Addr
	// Proto is the protocol keyword of the Received field: "HTTP" or
	// "HTTPS".
	Proto string
}

// Outcome is what became of one Submission.
type Outcome struct {
	// ID is the queue id of the accepted message: it is then synced to
	// disk, the guarantee of SMTP's 250. A message whose every accepted
	// recipient was dropped (suppressed) has an id too, and nothing spooled.
	ID string
	// Reply, when not nil, is why the message was refused.
	Reply *reply.Reply
	// Refused are the recipients refused while others were accepted, with
	// the reply RCPT TO would have had.
	Refused []RecipientRefusal
	// Dropped is true when every accepted recipient was dropped.
	Dropped bool
}

// RecipientRefusal is a recipient refused by Submit.
type RecipientRefusal struct {
	Recipient string
	Reply     *reply.Reply
}

// ErrShuttingDown is returned by Submit once Shutdown has begun.
var ErrShuttingDown = errors.New("ingest: shutting down")

// Submit handles subs for origin, several at once, and returns their
// outcomes in order once each accepted message is synced to disk. The
// checks and the policy run on as many messages at once as there are
// CPUs, so that the hooks' time budgets measure the hooks, not the crowd;
// the spool writes, up to Options.SubmitConcurrency at once, share their
// fsyncs. It returns ErrShuttingDown, having handled none, once Shutdown
// has begun; Shutdown waits for a Submit in progress.
func (s *Server) Submit(ctx context.Context, origin Origin, subs []Submission) ([]Outcome, error) {
	if origin.Tenant == nil {
		return nil, errors.New("ingest: submit without a tenant")
	}
	if !s.run.Work.Enter() {
		return nil, ErrShuttingDown
	}
	defer s.run.Work.Leave()
	out := make([]Outcome, len(subs))
	work := make(chan int)
	storing := make(chan struct{}, s.opts.SubmitConcurrency)
	var preparing, stores sync.WaitGroup
	for range min(runtime.NumCPU(), len(subs)) {
		preparing.Go(func() {
			for i := range work {
				env, m := s.submit(origin, &subs[i], &out[i])
				if m == nil {
					continue
				}
				storing <- struct{}{}
				stores.Go(func() {
					defer func() { <-storing }()
					id, err := s.store(env, m)
					if err != nil {
						out[i].Reply = toReply(err)
						return
					}
					out[i].ID = id
				})
			}
		})
	}
	for i := range subs {
		if ctx.Err() != nil {
			out[i] = Outcome{Reply: reply.New(451, "4.4.2", "Request ended before the message was handled")}
			continue
		}
		work <- i
	}
	close(work)
	preparing.Wait()
	stores.Wait()
	return out, nil
}

// submit takes one submission through an SMTP transaction's checks (MAIL,
// each RCPT, DATA) and the policy, and returns the message to store, or
// nil with out complete.
func (s *Server) submit(origin Origin, sub *Submission, out *Outcome) (*envelope, *message.Message) {
	env := &envelope{tenant: origin.Tenant, client: origin.Client, proto: origin.Proto}
	if err := s.submitSender(env, sub.Sender); err != nil {
		out.Reply = toReply(err)
		return nil, nil
	}
	seen := map[string]bool{}
	for _, to := range sub.Recipients {
		addr, drop, err := s.submitRecipient(env, to)
		if err != nil {
			out.Refused = append(out.Refused, RecipientRefusal{Recipient: to, Reply: toReply(err)})
			continue
		}
		if seen[addr] {
			continue
		}
		seen[addr] = true
		if drop != nil {
			s.count("recipient_dropped")
			env.dropped = append(env.dropped, droppedRcpt{addr: addr, tenant: origin.Tenant.Name, drop: drop})
			continue
		}
		env.rcpts = append(env.rcpts, message.Recipient{Addr: addr})
	}
	if len(env.rcpts) == 0 && len(env.dropped) == 0 {
		out.Reply = toReply(errNoRecipients)
		return nil, nil
	}
	if len(env.rcpts) > s.opts.MaxRecipients {
		out.Reply = toReply(s.refuse(env.client, env.from, "too_many_recipients", smtpErr(reply.New(452, "5.5.3",
			fmt.Sprintf("Too many recipients: at most %d per message", s.opts.MaxRecipients)))))
		return nil, nil
	}
	if err := s.checkRaw(env, sub.Raw); err != nil {
		out.Reply = toReply(err)
		return nil, nil
	}
	m, id, err := s.prepare(env, sub.Raw)
	if err != nil {
		out.Reply = toReply(err)
		return nil, nil
	}
	out.ID, out.Dropped = id, m == nil
	return env, m
}

// submitSender checks the envelope sender as MAIL FROM does.
func (s *Server) submitSender(env *envelope, from string) error {
	if from == "" {
		if err := s.checkNullSender(env.tenant, env.client); err != nil {
			return err
		}
	} else {
		a, err := address.Parse(from, address.Options{AllowUTF8: true})
		if err != nil {
			return s.refuse(env.client, from, "bad_sender", smtpErr(reply.New(553, "5.1.7", "Sender address rejected: "+err.Error())), "from", from)
		}
		if !env.tenant.MaySend(a.Domain) {
			return s.refuse(env.client, from, "sender_not_allowed", smtpErr(reply.New(553, "5.7.1",
				fmt.Sprintf("Sender domain %s is not allowed for tenant %s", a.Domain, env.tenant.Name))), "from", from)
		}
		env.from = a.String()
		env.utf8 = !isASCII(env.from)
	}
	return s.roomForMail(env.client, env.from)
}

// submitRecipient checks a recipient as RCPT TO does, and returns its
// normalised address and, when a check dropped it, the drop.
func (s *Server) submitRecipient(env *envelope, to string) (string, *extension.Drop, error) {
	a, err := address.Parse(to, address.Options{AllowUTF8: true})
	if err != nil {
		return "", nil, s.refuse(env.client, env.from, "bad_recipient", smtpErr(reply.New(553, "5.1.3", "Recipient address rejected: "+err.Error())), "rcpt", to)
	}
	addr := a.String()
	if !isASCII(addr) {
		env.utf8 = true
	}
	if err := s.checkRecipientDomain(env.tenant, env.client, env.from, addr, a.Domain); err != nil {
		return "", nil, err
	}
	err = s.checkRecipient(env.tenant.Name, addr)
	var (
		drop *extension.Drop
		rf   *extension.Refusal
	)
	switch {
	case err == nil:
		return addr, nil, nil
	case errors.Is(err, errCheckTimeout):
		return "", nil, s.refuse(env.client, env.from, "recipient_check_timeout", errTempCheckTimeout, "rcpt", addr, "timeout", s.opts.CheckTimeout)
	case errors.As(err, &drop):
		return addr, drop, nil
	case errors.As(err, &rf) && rf.Reply != nil && rf.Reason != "":
		return "", nil, s.refuse(env.client, env.from, rf.Reason, smtpErr(rf.Reply), "rcpt", addr)
	case reply.From(err) != nil:
		return "", nil, s.refuse(env.client, env.from, "recipient_refused", smtpErr(reply.From(err)), "rcpt", addr)
	default:
		s.log.Error("recipient check failed", "rcpt", addr, "err", err)
		return "", nil, errTempCheck
	}
}

// checkRaw refuses content that DATA would refuse: larger than MaxSize,
// or with a bare CR or LF, or a NUL.
func (s *Server) checkRaw(env *envelope, raw []byte) error {
	if int64(len(raw)) > s.opts.MaxSize {
		return s.refuse(env.client, env.from, "too_big", smtpErr(reply.New(552, "5.3.4",
			fmt.Sprintf("Message too big: at most %d octets", s.opts.MaxSize))))
	}
	var c crlfCheck
	if err := c.scan(raw); err != nil {
		var se *smtp.SMTPError
		errors.As(err, &se)
		return s.refuse(env.client, env.from, "bad_data", se)
	}
	if err := c.end(); err != nil {
		return s.refuse(env.client, env.from, "bad_data", errBareLF)
	}
	return nil
}

// toReply converts a refusal to a reply.
func toReply(err error) *reply.Reply {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return reply.New(se.Code, fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2]), se.Message)
	}
	return reply.New(451, "4.3.0", "Temporary failure, try again later")
}

// isASCII reports whether s has only ASCII characters.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
