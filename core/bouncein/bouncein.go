// Package bouncein is the bounce listener: an SMTP server for the
// platform's bounce domain that takes the bounces and feedback-loop
// reports sent back to the VERP addresses of re-enveloped mail, and
// nothing else.
//
// A recipient is accepted only when it is a VERP address whose signature
// verifies (core/verp), one of the feedback-loop addresses registered
// with providers, or postmaster of a domain the listener serves (RFC 5321
// section 4.5.1; see Options.Postmaster for where that mail goes); any
// other address is refused with 550 5.1.1, a forged or
// altered VERP address with 550 5.7.1, and both are counted and logged. A
// forged bounce therefore never reaches the code below: it can neither
// suppress a recipient nor be forwarded to anyone. A feedback report sent
// to a feedback-loop address counts only through a VERP address it quotes
// (its Original-Mail-From, or the Return-Path of the returned header)
// whose tag verifies, or through the reference header (verp.RefHeader) of
// the returned header section when it verifies: that names the tenant,
// the recipient, the source IP and the provider of any message, even one
// of a tenant that neither re-envelopes nor has a return-path domain, and
// even when the report redacts the recipient. Others are counted as
// unattributed and ignored.
//
// For an accepted message, the listener reads the bounce reference the
// spool kept for the message (tenant, author, recipients), classifies the
// bounce through the policy's on_bounce (core/bounce, the same code path
// as "corriere bounce classify") and, for the recipient the VERP address
// names:
//   - a failure (a standard DSN, or a non-standard bounce that
//     core/bounce recognises; other mail is logged and ignored): the
//     address suppressed for the message's tenant when the category is
//     hard, a DSN to the message's author — the RFC 3464 report with a
//     plain-language first part and the provider's bounce attached — so
//     each author gets their own bounces, not the platform, and a
//     "bounced" event;
//   - a feedback-loop (ARF) report: the address suppressed for the
//     tenant and a "complained" event; the report is not forwarded, as it
//     may identify the person who complained;
//   - an auto-reply, a delay notice or a success report: logged only.
//
// The reply to the end of DATA is sent after the suppression and the
// forwarded DSNs are durably stored, so a 250 here never loses a bounce. A
// recipient's bounce is forwarded, and its complaint recorded, once: the
// same sent again (a retry after a temporary failure here, or a replay)
// changes nothing more.
//
// The listener bounds what an unauthenticated peer can cost: concurrent
// sessions (MaxSessions), the size of a message, the recipients of one,
// invalid recipients per session (the session is closed after a few), and
// the time the policy spends on one message.
package bouncein

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/bounce"
	"corriere/core/dsn"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/smtpserve"
	"corriere/core/spool"
	"corriere/core/suppress"
	"corriere/core/verp"
)

// Verifier checks VERP addresses; *verp.Signer implements it.
type Verifier interface {
	Parse(addr string) (verp.Ref, error)
}

// Suppressor adds addresses to a tenant's suppression list;
// *suppress.List implements it.
type Suppressor interface {
	AddIfAbsent(e suppress.Entry) (bool, error)
}

// Enqueuer takes spooled messages for delivery; *queue.Queue implements
// it.
type Enqueuer interface {
	Add(meta *spool.Meta, entries []*spool.Entry)
}

// Options configure a Server.
type Options struct {
	// Hostname is announced in the greeting and names this node in the
	// DSNs it forwards. Required.
	Hostname string
	// VERP verifies recipient addresses. Required.
	VERP Verifier
	// Spool holds the bounce references and receives the forwarded DSNs.
	// Required.
	Spool *spool.Spool
	// Queue delivers the forwarded DSNs. Required.
	Queue Enqueuer
	// Policy classifies bounces (OnBounce). Required.
	Policy policy.Policy
	// FBLAddresses are the feedback-loop addresses registered with the
	// providers, whose MX is this listener. May be empty.
	FBLAddresses []string
	// Domains reports whether the listener receives mail for a domain
	// (lower case) besides Hostname and the domains of FBLAddresses: the
	// tenants' bounce and return-path domains. Their postmaster is
	// accepted. May be nil.
	Domains func(domain string) bool
	// Postmaster is the operator's address that receives, unchanged but
	// for a Received field, the mail sent to postmaster of the listener's
	// domains. The default value is "": such mail is accepted, logged and
	// recorded as an event, and not kept.
	Postmaster string
	// Suppress records hard bounces and complaints durably before the
	// listener answers 250; *suppress.List implements it. May be nil (the
	// events then carry them alone).
	Suppress Suppressor
	// Events receives bounced, complained, rejected and dsn events. May
	// be nil.
	Events *event.Bus
	// Logger logs what arrives and what is done with it. The default
	// value is slog.Default().
	Logger *slog.Logger
	// MaxSize is the largest message taken, in octets. The default value
	// is 10 MiB: bounces that return a whole large original are cut by
	// their senders or refused here.
	MaxSize int64
	// MaxRecipients bounds the recipients of one message. The default
	// value is 50.
	MaxRecipients int
	// MaxSessions bounds concurrent sessions; more get a 421 greeting.
	// The default value is 100.
	MaxSessions int
	// Timeout bounds each read and write on a connection. The default
	// value is 2 minutes.
	Timeout time.Duration
	// PolicyTimeout bounds the classification of one message. The default
	// value is 10s.
	PolicyTimeout time.Duration
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
}

// Counts are the listener's counters since it started.
type Counts struct {
	// Messages counts messages accepted at the end of DATA.
	Messages int64 `json:"messages"`
	// Bounces counts failed recipients taken from them.
	Bounces int64 `json:"bounces"`
	// Complaints counts feedback reports taken from them.
	Complaints int64 `json:"complaints"`
	// Forwarded counts DSNs queued to authors.
	Forwarded int64 `json:"forwarded"`
	// Ignored counts accepted messages with nothing to act on: not a
	// bounce, an auto-reply, a delay or success notice, or a reference
	// the spool no longer keeps.
	Ignored int64 `json:"ignored"`
	// NotVERP counts recipients refused as not VERP addresses.
	NotVERP int64 `json:"not_verp"`
	// Forged counts recipients refused because their tag did not verify.
	Forged int64 `json:"forged"`
	// Unattributed counts messages to a feedback-loop address that quote
	// neither a VERP address of ours nor a reference header that verifies.
	Unattributed int64 `json:"unattributed"`
	// Referenced counts the complaints attributed through the reference
	// header alone (also counted in Complaints).
	Referenced int64 `json:"referenced"`
}

// Server is a running bounce listener.
type Server struct {
	opts Options
	log  *slog.Logger
	fbl  map[string]bool // lower-cased feedback-loop addresses
	// domains are the host name and the feedback-loop addresses' domains,
	// lower-cased: their postmaster is accepted.
	domains map[string]bool
	// run serves the sessions; its Work gate admits the messages being
	// received and handled.
	run *smtpserve.Runner

	refMu    sync.Mutex // one bounce at a time reads and updates bounce references
	seenRefs seenRefs   // references whose complaint was counted (reference.go)

	messages, bounces, complaints, forwarded, ignored, notVERP, forged, unattributed, referenced atomic.Int64
}

// New returns a Server; Serve starts it.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Hostname == "":
		return nil, errors.New("bouncein: no host name")
	case opts.VERP == nil:
		return nil, errors.New("bouncein: no VERP verifier")
	case opts.Spool == nil:
		return nil, errors.New("bouncein: no spool")
	case opts.Queue == nil:
		return nil, errors.New("bouncein: no queue")
	case opts.Policy == nil:
		return nil, errors.New("bouncein: no policy")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = 10 << 20
	}
	if opts.MaxRecipients == 0 {
		opts.MaxRecipients = 50
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = 100
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.PolicyTimeout == 0 {
		opts.PolicyTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "bounce-listener"), fbl: map[string]bool{},
		domains: map[string]bool{strings.ToLower(opts.Hostname): true}}
	for _, a := range opts.FBLAddresses {
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 {
			return nil, fmt.Errorf("bouncein: feedback-loop address %q is not an address", a)
		}
		s.fbl[strings.ToLower(a)] = true
		s.domains[strings.ToLower(a[at+1:])] = true
	}
	if opts.Postmaster != "" && !strings.Contains(opts.Postmaster, "@") {
		return nil, fmt.Errorf("bouncein: postmaster address %q is not an address", opts.Postmaster)
	}
	srv := smtp.NewServer(s)
	srv.Domain = opts.Hostname
	srv.MaxMessageBytes = opts.MaxSize
	srv.MaxRecipients = opts.MaxRecipients
	srv.ReadTimeout = opts.Timeout
	srv.WriteTimeout = opts.Timeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = smtpserve.Log{Logger: s.log, Level: slog.LevelWarn}
	s.run = &smtpserve.Runner{SMTP: srv, MaxSessions: opts.MaxSessions}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.run.Serve(ln) }

// Shutdown stops accepting connections and messages, waits until the
// messages being handled are done (or ctx ends), then closes every
// session; what is being classified or stored still ends, within the
// policy timeout, before it returns. Then nothing of the listener uses the
// spool.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.run.Shutdown(ctx); err != nil {
		return fmt.Errorf("bouncein: shutdown: %w", err)
	}
	return nil
}

// Counts returns the counters.
func (s *Server) Counts() Counts {
	return Counts{
		Messages: s.messages.Load(), Bounces: s.bounces.Load(), Complaints: s.complaints.Load(),
		Forwarded: s.forwarded.Load(), Ignored: s.ignored.Load(), NotVERP: s.notVERP.Load(), Forged: s.forged.Load(),
		Unattributed: s.unattributed.Load(), Referenced: s.referenced.Load(),
	}
}

// CountsHandler serves Counts as JSON, for the admin API.
func (s *Server) CountsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Counts()) // the client is gone if this fails
	})
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	peer := ""
	if a, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		peer = a.IP.String()
	}
	return &session{s: s, conn: c, peer: peer}, nil
}

// session is one SMTP session.
type session struct {
	s    *Server
	conn *smtp.Conn
	peer string
	from string
	refs []addressed
	fbl  bool // sent to a feedback-loop address
	// postmaster is the postmaster address the message was sent to, if
	// any.
	postmaster string
	bad        int // recipients refused in this session
}

// maxBadRcpts is how many refused recipients a session may try before it
// is closed: a bounce names one or a few, a scanner many.
const maxBadRcpts = 10

var (
	errShuttingDown = smtpError(reply.New(421, "4.3.2", "Service shutting down, try again later"))
	errTooManyBad   = smtpError(reply.New(421, "4.7.0", "Too many invalid recipients, closing"))
)

// addressed is an accepted recipient and what its VERP address names.
type addressed struct {
	addr string
	ref  verp.Ref
	// quoted marks a VERP address found in a report sent to a
	// feedback-loop address: only complaints are taken from it.
	quoted bool
	// source and provider are where the message left from and to, when
	// the report quotes its reference header too.
	source, provider string
}

func (se *session) Reset() { se.from, se.refs, se.fbl, se.postmaster = "", nil, false, "" }

func (se *session) Logout() error { return nil }

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := se.s
	if s.fbl[strings.ToLower(to)] {
		se.fbl = true
		return nil
	}
	if s.isPostmaster(to) {
		se.postmaster = to
		return nil
	}
	ref, err := s.opts.VERP.Parse(to)
	if err != nil {
		se.bad++
		if se.bad > maxBadRcpts {
			time.AfterFunc(100*time.Millisecond, func() { se.conn.Close() })
			return errTooManyBad
		}
	}
	switch {
	case errors.Is(err, verp.ErrForged):
		s.forged.Add(1)
		s.log.Warn("bounce to a VERP address that does not verify: refused, nothing done", "rcpt", to, "from", se.from, "peer", se.peer)
		s.emit(&event.Event{Type: event.Rejected, Recipient: to, Sender: se.from, Category: event.CategoryForgedVERP,
			Reason: "bounce address tag does not verify; ignored"})
		return smtpError(reply.New(550, "5.7.1", fmt.Sprintf("<%s>: this bounce address does not verify; it was not issued here or was altered", to)))
	case err != nil:
		s.notVERP.Add(1)
		s.log.Info("refused a recipient that is not a bounce address", "rcpt", to, "from", se.from, "peer", se.peer)
		return smtpError(reply.New(550, "5.1.1", fmt.Sprintf("<%s>: no such mailbox; this server only takes bounces for the addresses it issued", to)))
	}
	if !slices.ContainsFunc(se.refs, func(a addressed) bool { return a.ref == ref }) {
		se.refs = append(se.refs, addressed{addr: to, ref: ref})
	}
	return nil
}

func (se *session) Data(r io.Reader) error {
	s := se.s
	if !s.run.Work.Enter() {
		return errShuttingDown
	}
	defer s.run.Work.Leave()
	raw, err := io.ReadAll(r)
	if err != nil {
		var tooBig *smtp.SMTPError
		if errors.As(err, &tooBig) {
			return err
		}
		return smtpError(reply.New(451, "4.3.0", "could not read the message; try again later"))
	}
	if se.postmaster != "" {
		if err := s.postmasterMail(se.from, se.peer, se.conn.Hostname(), se.postmaster, raw); err != nil {
			s.log.Error("mail to postmaster not kept; asked the sender to retry", "from", se.from, "peer", se.peer, "err", err)
			return smtpError(reply.New(451, "4.3.0", "message could not be stored now; try again later"))
		}
		if len(se.refs) == 0 && !se.fbl {
			s.messages.Add(1)
			return nil
		}
	}
	refs := slices.Clone(se.refs)
	if se.fbl {
		for _, q := range s.quotedRefs(raw) {
			if !slices.ContainsFunc(refs, func(a addressed) bool { return a.ref == q.ref }) {
				refs = append(refs, q)
			}
		}
	}
	var byRef *verp.Reference
	ref, found, refErr := s.quotedReference(raw)
	switch {
	case found && refErr == nil:
		if !refPeer(refs, ref) && se.fbl {
			byRef = &ref
		}
	case found && se.fbl && len(refs) == 0:
		s.log.Warn("feedback report quotes a reference header that does not verify; nothing done", "from", se.from, "peer", se.peer, "err", refErr)
	}
	if se.fbl && len(refs) == 0 && byRef == nil {
		s.unattributed.Add(1)
		s.log.Info("feedback report quotes no VERP address or reference of ours; ignored", "from", se.from, "peer", se.peer)
	}
	if err := s.handle(se.from, se.peer, raw, refs, byRef); err != nil {
		s.log.Error("bounce not processed; asked the sender to retry", "from", se.from, "peer", se.peer, "err", err)
		return smtpError(reply.New(451, "4.3.0", "bounce could not be processed now; try again later"))
	}
	s.messages.Add(1)
	return nil
}

// handle classifies one received message and acts on it for every VERP
// recipient it was sent to or quotes, and for the reference header it
// quotes when byRef is not nil.
func (s *Server) handle(from, peer string, raw []byte, refs []addressed, byRef *verp.Reference) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.PolicyTimeout)
	defer cancel()
	results, err := bounce.Classify(ctx, raw, s.opts.Policy)
	if err != nil {
		if len(results) == 0 && ctx.Err() != nil {
			return err
		}
		s.log.Warn("bounce partly classified", "from", from, "err", err)
	}
	var errs []error
	for _, a := range refs {
		errs = append(errs, s.handleOne(from, peer, raw, a, results))
	}
	if byRef != nil {
		errs = append(errs, s.handleReference(from, peer, raw, *byRef, results))
	}
	return errors.Join(errs...)
}

// handleOne acts on the results of one bounce for one VERP recipient.
//
// Bounces are few: one at a time is handled under refMu, so the bounce
// reference read here is the one updated.
func (s *Server) handleOne(from, peer string, raw []byte, a addressed, results []bounce.Result) error {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	ref, err := s.opts.Spool.BounceRef(a.ref.MsgID)
	if errors.Is(err, spool.ErrNotFound) {
		s.ignored.Add(1)
		s.log.Info("bounce for a message the spool no longer keeps a reference of; ignored", "verp", a.addr, "msg_id", a.ref.MsgID)
		return nil
	}
	if err != nil {
		return err
	}
	if a.ref.Index >= len(ref.Rcpts) {
		s.ignored.Add(1)
		s.log.Warn("verified bounce address names a recipient the message does not have; ignored", "verp", a.addr, "msg_id", ref.MsgID)
		return nil
	}
	rcpt := ref.Rcpts[a.ref.Index]
	r, ok := pick(results, rcpt)
	if ok && a.quoted && r.Report.Kind != bounce.KindARF {
		ok = false
	}
	if !ok {
		s.ignored.Add(1)
		s.log.Info("message to a bounce address is not a bounce; ignored", "verp", a.addr, "msg_id", ref.MsgID, "from", from)
		return nil
	}
	base := event.Event{MsgID: ref.MsgID, Recipient: rcpt, Tenant: ref.Tenant, Class: string(ref.Class),
		Category: r.Verdict.Category, MX: r.Report.RemoteMTA, Reply: diagnostic(r.Report), Source: a.source, Provider: a.provider}
	switch {
	case r.Report.Kind == bounce.KindARF:
		if slices.Contains(ref.Complained, a.ref.Index) {
			s.ignored.Add(1)
			s.log.Info("complaint about a recipient recorded already; ignored", "msg_id", ref.MsgID, "rcpt", rcpt, "from", from)
			return nil
		}
		reason := "feedback report (" + orDash(r.Report.FeedbackType) + ") from " + peerName(from, peer)
		if err := s.suppress(ref, rcpt, event.CategoryFeedback, suppress.SourceComplaint, reason); err != nil {
			return err
		}
		if err := s.recordComplaint(ref, a.ref.Index); err != nil {
			return err
		}
		s.complaints.Add(1)
		e := base
		e.Type, e.Reason = event.Complained, reason
		s.emit(&e)
		s.log.Info("complaint received", "msg_id", ref.MsgID, "rcpt", rcpt, "tenant", ref.Tenant, "feedback_type", r.Report.FeedbackType)
		return nil
	case !failed(r):
		s.ignored.Add(1)
		s.log.Info("not a failure; nothing to do", "msg_id", ref.MsgID, "rcpt", rcpt, "category", r.Verdict.Category, "action", r.Report.Action)
		return nil
	case slices.Contains(ref.Forwarded, a.ref.Index):
		s.ignored.Add(1)
		s.log.Info("bounce for a recipient whose bounce was forwarded already; ignored", "msg_id", ref.MsgID, "rcpt", rcpt, "from", from)
		return nil
	}
	if r.Verdict.Hard {
		if err := s.suppress(ref, rcpt, r.Verdict.Category, suppress.SourceBounce, base.Reply); err != nil {
			return err
		}
	}
	dsnID, err := s.forward(ref, a.ref.Index, rcpt, r, raw)
	if err != nil {
		return err
	}
	s.bounces.Add(1)
	s.forwarded.Add(1)
	e := base
	e.Type, e.Reason, e.Hard = event.Bounced, "asynchronous bounce from "+peerName(from, peer), r.Verdict.Hard
	s.emit(&e)
	s.emit(&event.Event{Type: event.DSNQueued, MsgID: ref.MsgID, Recipient: rcpt, Tenant: ref.Tenant,
		Reason: "delivery status notification queued as " + dsnID + " (asynchronous bounce forwarded to the author <" + ref.Author + ">)"})
	s.log.Info("asynchronous bounce forwarded", "msg_id", ref.MsgID, "rcpt", rcpt, "tenant", ref.Tenant,
		"category", r.Verdict.Category, "hard", r.Verdict.Hard, "author", ref.Author, "dsn", dsnID)
	return nil
}

// recordComplaint records in the bounce reference that the complaint
// about recipient index was taken. Call it under refMu.
func (s *Server) recordComplaint(ref *spool.BounceRef, index int) error {
	ref.Complained = append(ref.Complained, index)
	b := s.opts.Spool.NewBatch()
	defer b.Close()
	if err := b.PutBounceRef(ref); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("bouncein: record complaint for %s: %w", ref.MsgID, err)
	}
	return nil
}

// suppress adds rcpt to the suppression list of the message's tenant.
func (s *Server) suppress(ref *spool.BounceRef, rcpt string, category event.Category, source, reason string) error {
	if s.opts.Suppress == nil {
		return nil
	}
	_, err := s.opts.Suppress.AddIfAbsent(suppress.Entry{
		Tenant: ref.Tenant, Address: rcpt, Category: category, Source: source,
		Reason: reason, Added: s.opts.Now(), MsgID: ref.MsgID,
	})
	if err != nil {
		return fmt.Errorf("bouncein: suppress %s for %q: %w", rcpt, ref.Tenant, err)
	}
	return nil
}

// maxQuoted bounds the VERP addresses taken from one feedback report.
const maxQuoted = 10

// quotedRefs returns the VERP addresses of ours that verify among those a
// feedback report quotes: the Original-Mail-From field of the report and
// the Return-Path of the returned message, wherever they are in raw.
func (s *Server) quotedRefs(raw []byte) []addressed {
	var out []addressed
	seen := map[verp.Ref]bool{}
	for line := range bytes.Lines(raw) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || (!bytes.EqualFold(name, []byte("Original-Mail-From")) && !bytes.EqualFold(name, []byte("Return-Path"))) {
			continue
		}
		addr := string(bytes.Trim(bytes.TrimSpace(value), "<>"))
		ref, err := s.opts.VERP.Parse(addr)
		if err != nil || seen[ref] {
			continue
		}
		seen[ref] = true
		out = append(out, addressed{addr: addr, ref: ref, quoted: true})
		if len(out) == maxQuoted {
			break
		}
	}
	return out
}

// pick returns the result about rcpt, or the first failure when the
// bounce names the recipient differently (aliases, forwarding): the
// VERP address says whom it is about, the bounce says why.
func pick(results []bounce.Result, rcpt string) (bounce.Result, bool) {
	for _, r := range results {
		if strings.EqualFold(r.Report.Recipient, rcpt) {
			return r, true
		}
	}
	for _, r := range results {
		if failed(r) || r.Report.Kind == bounce.KindARF {
			return r, true
		}
	}
	if len(results) > 0 {
		return results[0], true
	}
	return bounce.Result{}, false
}

// failed reports whether a result is a delivery failure.
func failed(r bounce.Result) bool {
	switch r.Verdict.Category {
	case event.CategoryDelivered, event.CategoryVacation, event.CategoryFeedback:
		return false
	}
	switch strings.ToLower(r.Report.Action) {
	case "delayed", "delivered", "relayed", "expanded":
		return false
	}
	return r.Report.Kind != bounce.KindAutoreply
}

// forward queues a DSN about recipient index of the message to its
// author, records in the bounce reference, in the same commit, that it
// did, and returns the DSN's spool ID. Call it under refMu.
func (s *Server) forward(ref *spool.BounceRef, index int, rcpt string, r bounce.Result, raw []byte) (string, error) {
	msgID := ref.MsgID
	now := s.opts.Now()
	rc := dsn.Recipient{Addr: rcpt, Action: dsn.Failed, RemoteMTA: r.Report.RemoteMTA, LastAttempt: now}
	if st, ok := reply.ParseStatus(r.Report.Status); ok {
		rc.Status = st
	}
	said, text, ok := providerReply(r.Report)
	if ok {
		rc.Diagnostic = said
	}
	rc.Reason = fmt.Sprintf("The recipient's mail system took the message at first and returned it later (%s).", r.Verdict.Category)
	if !ok && text != "" {
		rc.Reason += " It said: " + text
	}
	rep := &dsn.Report{
		ReportingMTA: s.opts.Hostname, To: ref.Author, Arrival: ref.Received,
		Ret: message.RetFull, Original: raw, Forwarded: true, Now: now,
		Recipients: []dsn.Recipient{rc},
	}
	built, err := dsn.Build(rep)
	if err != nil {
		return "", fmt.Errorf("bouncein: build DSN for %s: %w", msgID, err)
	}
	h, body, err := message.Parse(built)
	if err != nil {
		return "", fmt.Errorf("bouncein: parse own DSN for %s: %w", msgID, err)
	}
	m := &message.Message{
		Envelope: message.Envelope{Recipients: []message.Recipient{{Addr: ref.Author, Notify: message.NotifyNever}}},
		Header:   h, Body: body, Tenant: ref.Tenant, Class: message.Transactional, Received: now,
	}
	b := s.opts.Spool.NewBatch()
	defer b.Close()
	meta, entries, err := b.Put(m, now)
	if err != nil {
		return "", fmt.Errorf("bouncein: spool DSN for %s: %w", msgID, err)
	}
	ref.Forwarded = append(ref.Forwarded, index)
	if err := b.PutBounceRef(ref); err != nil {
		return "", err
	}
	if err := b.Commit(true); err != nil {
		return "", fmt.Errorf("bouncein: spool DSN for %s: %w", msgID, err)
	}
	s.opts.Queue.Add(meta, entries)
	return meta.ID, nil
}

func (s *Server) emit(e *event.Event) {
	if s.opts.Events == nil {
		return
	}
	e.Time = s.opts.Now()
	s.opts.Events.Emit(e)
}

// diagnostic renders a report's reply, quoted once, for events and
// suppression reasons.
func diagnostic(r policy.BounceReport) string {
	rep, text, ok := providerReply(r)
	switch {
	case ok:
		return rep.String()
	case r.Status != "" && text != "":
		return r.Status + " " + text
	case r.Status != "":
		return r.Status
	}
	return text
}

func peerName(from, peer string) string {
	if from == "" {
		from = "<>"
	}
	return from + " [" + peer + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// maxDiagnostic bounds the diagnostic text carried into events and DSNs.
const maxDiagnostic = 500

// oneLine collapses white space and bounds the length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDiagnostic {
		s = strings.ToValidUTF8(s[:maxDiagnostic], "") // no rune cut in half
	}
	return s
}

// smtpError turns a reply into go-smtp's error type.
func smtpError(r *reply.Reply) *smtp.SMTPError {
	return &smtp.SMTPError{
		Code:         r.Code,
		EnhancedCode: smtp.EnhancedCode{r.Status.Class, r.Status.Subject, r.Status.Detail},
		Message:      r.Text,
	}
}
