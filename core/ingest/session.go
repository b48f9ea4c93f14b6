package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"corriere/core/address"
	"corriere/core/extension"
	"corriere/core/message"
	"corriere/core/reply"
	"corriere/core/smtpserve"
	"corriere/core/tenant"
)

// Replies the server gives; each says what is wrong in a sentence.
var (
	errAuthRequired  = smtpErr(reply.New(530, "5.7.0", "Authentication required: use AUTH before MAIL FROM"))
	errRelayDenied   = smtpErr(reply.New(550, "5.7.1", "Relaying denied: authenticate first (AUTH is offered after STARTTLS)"))
	errAuthNeedsTLS  = smtpErr(reply.New(538, "5.7.11", "Encryption required for requested authentication mechanism: use STARTTLS first"))
	errAuthFailed    = smtpErr(reply.New(535, "5.7.8", "Authentication credentials invalid"))
	errBareLF        = smtpErr(reply.New(550, "5.5.2", "Message refused: line ending without CRLF (bare CR or LF) found; see RFC 5321 section 2.3.8"))
	errNUL           = smtpErr(reply.New(550, "5.6.0", "Message refused: NUL character found; encode binary content (base64), see RFC 5322 section 2.3"))
	errBadHeader     = smtpErr(reply.New(554, "5.6.0", "Message refused: malformed header section; see RFC 5322 section 2.2"))
	errShuttingDown  = smtpErr(reply.New(421, "4.3.2", "Service shutting down, try again later"))
	errLoop          = smtpErr(reply.New(554, "5.4.6", "Routing loop detected: too many Received header fields"))
	errTempPolicy    = smtpErr(reply.New(451, "4.3.0", "Policy temporarily unavailable, try again later"))
	errTempStorage   = smtpErr(reply.New(451, "4.3.0", "Local storage error, try again later"))
	errNoRecipients  = smtpErr(reply.New(554, "5.5.1", "No valid recipients"))
	errUnknownMecha  = smtpErr(reply.New(504, "5.5.4", "Unrecognized authentication mechanism: use PLAIN or LOGIN"))
	errTooManyAuth   = smtpErr(reply.New(421, "4.7.0", "Too many failed authentication attempts, closing"))
	maxAuthFailures  = 3
	authWait         = 5 * time.Second
	maxReceivedCount = 50
)

// smtpErr converts a reply to go-smtp's error type.
func smtpErr(r *reply.Reply) *smtp.SMTPError {
	return &smtp.SMTPError{
		Code:         r.Code,
		EnhancedCode: smtp.EnhancedCode{r.Status.Class, r.Status.Subject, r.Status.Detail},
		Message:      r.Text,
	}
}

// droppedRcpt is a recipient a check dropped (see extension.Drop).
type droppedRcpt struct {
	addr   string
	tenant string
	drop   *extension.Drop
}

// session is one SMTP session.
type session struct {
	s    *Server
	conn *smtp.Conn
	// sconn is the runner's connection (under TLS after STARTTLS).
	sconn    *smtpserve.Conn
	ip       netip.Addr
	client   netip.Prefix // the client ip belongs to, as lockouts count
	relayNet bool

	tenant       *tenant.Tenant
	authFailures int

	// mu orders the transaction's handlers against Logout, which
	// Server.Close calls from another goroutine; loggedOut records it.
	mu        sync.Mutex
	loggedOut bool

	// The current transaction.
	inTxn   bool
	from    string
	opts    smtp.MailOptions
	rcpts   []message.Recipient
	dropped []droppedRcpt
	seen    map[string]bool
	utf8    bool
	txnEnd  func()
}

// closeAfterReply ends the session once its next reply is written.
func (se *session) closeAfterReply() {
	if se.sconn != nil {
		se.sconn.CloseAfterReply()
	}
}

func (se *session) isTLS() bool {
	_, ok := se.conn.TLSConnectionState()
	return ok
}

// authAvailable reports whether AUTH may be used on this session now.
func (se *session) authAvailable() bool {
	return se.isTLS() || (se.s.opts.InsecureAuthLoopback && se.ip.IsLoopback())
}

// AuthMechanisms implements smtp.AuthSession: AUTH is offered only over
// TLS, or on loopback when explicitly allowed.
func (se *session) AuthMechanisms() []string {
	if !se.authAvailable() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession.
func (se *session) Auth(mech string) (sasl.Server, error) {
	if !se.authAvailable() {
		se.s.count("auth_without_tls")
		return nil, errAuthNeedsTLS
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return se.authFailed(user, "authorization identity differs from user")
			}
			return se.authenticate(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: se.authenticate}, nil
	}
	return nil, errUnknownMecha
}

func (se *session) authenticate(user, pass string) error {
	t, known := se.s.opts.Tenants.Lookup(user)
	if known && se.s.authCache.ok(t, pass) {
		return se.authenticated(t)
	}
	if se.s.authGuard.locked(se.client, user) {
		// Logged at debug level: the lockout itself was logged once, and a
		// guessing client must not flood the log.
		se.s.count("auth_locked")
		se.s.log.Debug("authentication refused: locked out", "client", se.ip.String(), "user", user)
		return se.endAuth(errAuthLocked)
	}
	if !known {
		t = nil
	}
	if err := se.s.passwords.check(t, pass); err != nil {
		if errors.Is(err, errNoSlot) {
			se.s.count("auth_busy")
			se.s.log.Warn("authentication postponed: every password check slot is busy", "client", se.ip.String(), "user", user)
			return errAuthBusy
		}
		for _, l := range se.s.authGuard.fail(se.client, user) {
			se.lockedOut(user, l)
		}
		return se.authFailed(user, err.Error())
	}
	se.s.authGuard.succeed(user)
	se.s.authCache.remember(t, pass)
	return se.authenticated(t)
}

func (se *session) authenticated(t *tenant.Tenant) error {
	se.tenant = t
	se.s.log.Info("client authenticated", "client", se.ip.String(), "tenant", t.Name)
	return nil
}

// authFailed logs and counts a failed AUTH.
func (se *session) authFailed(user, why string) error {
	se.s.count("auth_failed")
	se.s.log.Warn("authentication failed", "client", se.ip.String(), "user", user, "reason", why)
	return se.endAuth(errAuthFailed)
}

// endAuth answers a refused AUTH with answer, or, after too many in the
// session, ends the session.
func (se *session) endAuth(answer *smtp.SMTPError) error {
	se.authFailures++
	if se.authFailures >= maxAuthFailures {
		se.closeAfterReply()
		return errTooManyAuth
	}
	return answer
}

// Mail implements smtp.Session.
func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.s.run.Work.Closed() {
		return errShuttingDown
	}
	if se.tenant == nil && !se.relayNet && se.authAvailable() {
		return se.reject("auth_required", errAuthRequired, "from", from)
	}
	if from != "" {
		a, err := address.Parse(from, address.Options{AllowUTF8: opts.UTF8})
		if err != nil {
			return se.reject("bad_sender", smtpErr(reply.New(553, "5.1.7", "Sender address rejected: "+err.Error())), "from", from)
		}
		if se.tenant != nil && !se.tenant.MaySend(a.Domain) {
			return se.reject("sender_not_allowed", smtpErr(reply.New(553, "5.7.1",
				fmt.Sprintf("Sender domain %s is not allowed for tenant %s", a.Domain, se.tenant.Name))), "from", from)
		}
		from = a.String()
	} else if err := se.s.checkNullSender(se.tenant, se.ip); err != nil {
		return err
	}
	if err := se.roomForMail(); err != nil {
		return err
	}
	if !se.beginTxn() {
		return errShuttingDown
	}
	se.from = from
	se.opts = *opts
	se.utf8 = opts.UTF8
	return nil
}

// beginTxn counts a transaction as in flight until Reset or Logout, so that
// Shutdown waits for it; it returns false when the server is shutting
// down.
func (se *session) beginTxn() bool {
	if se.inTxn {
		return true
	}
	if !se.s.run.Work.Enter() {
		return false
	}
	se.inTxn = true
	var once sync.Once
	se.txnEnd = func() { once.Do(se.s.run.Work.Leave) }
	return true
}

// Rcpt implements smtp.Session.
func (se *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.tenant == nil && !se.relayNet {
		return se.reject("relay_denied", errRelayDenied, "rcpt", to)
	}
	a, err := address.Parse(to, address.Options{AllowUTF8: se.utf8})
	if err != nil {
		return se.reject("bad_recipient", smtpErr(reply.New(553, "5.1.3", "Recipient address rejected: "+err.Error())), "rcpt", to)
	}
	addr := a.String()
	if err := se.s.checkRecipientDomain(se.tenant, se.ip, se.from, addr, a.Domain); err != nil {
		return err
	}
	tenantName := ""
	if se.tenant != nil {
		tenantName = se.tenant.Name
	}
	var drop *extension.Drop
	if err := se.s.checkRecipient(tenantName, addr); err != nil {
		var rf *extension.Refusal
		switch {
		case errors.Is(err, errCheckTimeout):
			return se.reject("recipient_check_timeout", errTempCheckTimeout, "rcpt", addr, "timeout", se.s.opts.CheckTimeout)
		case errors.As(err, &drop):
			// Accepted, not delivered: see below.
		case errors.As(err, &rf) && rf.Reply != nil && rf.Reason != "":
			return se.reject(rf.Reason, smtpErr(rf.Reply), "rcpt", addr)
		case reply.From(err) != nil:
			return se.reject("recipient_refused", smtpErr(reply.From(err)), "rcpt", addr)
		default:
			se.s.log.Error("recipient check failed", "rcpt", addr, "err", err)
			return errTempCheck
		}
	}
	if se.seen[addr] {
		return nil // a duplicate RCPT is accepted once, delivered once
	}
	if se.seen == nil {
		se.seen = map[string]bool{}
	}
	se.seen[addr] = true
	if drop != nil {
		se.s.count("recipient_dropped")
		se.s.log.Info("recipient accepted but dropped", "client", se.ip.String(), "tenant", tenantName, "rcpt", addr,
			"category", drop.Category, "reason", drop.Reason)
		se.dropped = append(se.dropped, droppedRcpt{addr: addr, tenant: tenantName, drop: drop})
		return nil
	}
	r := message.Recipient{Addr: addr}
	if opts.OriginalRecipient != "" {
		r.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	for _, n := range opts.Notify {
		switch n {
		case smtp.DSNNotifyNever:
			r.Notify |= message.NotifyNever
		case smtp.DSNNotifySuccess:
			r.Notify |= message.NotifySuccess
		case smtp.DSNNotifyFailure:
			r.Notify |= message.NotifyFailure
		case smtp.DSNNotifyDelayed:
			r.Notify |= message.NotifyDelay
		}
	}
	se.rcpts = append(se.rcpts, r)
	return nil
}

// The verdict of recipient checks that outlived Options.CheckTimeout, and
// the replies to a check that failed or timed out: the client retries.
var (
	errCheckTimeout     = errors.New("recipient checks timed out")
	errTempCheck        = smtpErr(reply.New(451, "4.3.0", "Recipient check temporarily unavailable, try again later"))
	errTempCheckTimeout = smtpErr(reply.New(451, "4.3.0", "Recipient check timed out, try again later"))
)

// checkRecipient runs the recipient checks for rcpt, in order, and returns
// the first verdict (see extension.RecipientCheck), or errCheckTimeout
// once Options.CheckTimeout has passed, whether or not the checks honour
// their context: a slow check costs its recipient a 451, never the session
// a hang.
func (s *Server) checkRecipient(tenantName, rcpt string) error {
	if len(s.opts.RecipientChecks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CheckTimeout)
	defer cancel()
	verdict := make(chan error, 1)
	go func() {
		for _, c := range s.opts.RecipientChecks {
			if err := c.CheckRecipient(ctx, tenantName, rcpt); err != nil {
				verdict <- err
				return
			}
		}
		verdict <- nil
	}()
	select {
	case err := <-verdict:
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", errCheckTimeout, ctx.Err())
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errCheckTimeout, ctx.Err())
	}
}

// Data implements smtp.Session.
//
// The message is read without holding the session's lock, so that closing
// the connection can interrupt the read; it is then handled under the lock
// and a place of its own in the server's gate, so that Shutdown waits for
// it even when the connection is closed meanwhile.
func (se *session) Data(r io.Reader) error {
	se.mu.Lock()
	empty := len(se.rcpts) == 0 && len(se.dropped) == 0
	se.mu.Unlock()
	if empty {
		se.Reset()
		return errNoRecipients
	}
	if err := se.roomForMail(); err != nil {
		se.Reset()
		return err
	}
	se.limitDataReads()
	data, err := readBody(r, se.s.opts.SpillDir, se.s.dataMem)
	se.mu.Lock()
	defer se.mu.Unlock()
	defer se.endTxn()
	if err != nil {
		var se2 *smtp.SMTPError
		if errors.As(err, &se2) {
			return se.reject("bad_data", se2)
		}
		return se.dataReadError(err)
	}
	if se.loggedOut || !se.s.run.Work.Enter() {
		return errShuttingDown
	}
	defer se.s.run.Work.Leave()
	defer data.release()
	return se.accept(data.raw)
}

func (se *session) accept(raw []byte) error {
	env := &envelope{
		tenant: se.tenant, client: se.ip, helo: se.conn.Hostname(), proto: se.protocol(),
		from: se.from, utf8: se.utf8, envID: se.opts.EnvelopeID, rcpts: se.rcpts, dropped: se.dropped,
	}
	switch se.opts.Return {
	case smtp.DSNReturnFull:
		env.ret = message.RetFull
	case smtp.DSNReturnHeaders:
		env.ret = message.RetHdrs
	}
	id, err := se.s.accept(env, raw)
	if err != nil {
		return err
	}
	return queuedAs(id)
}

// protocol is the session's protocol keyword for the Received field (RFC
// 3848).
func (se *session) protocol() string {
	proto := "ESMTP"
	if se.isTLS() {
		proto += "S"
	}
	if se.tenant != nil {
		proto += "A"
	}
	return proto
}

// queuedAs is the reply to an accepted message: 250 with the queue id, the
// same id as in the Received field, the events and the queue commands, so
// that a client's log line leads an operator to the message. go-smtp sends
// an *smtp.SMTPError as the reply whatever its code.
func queuedAs(id string) error {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id}
}

// errStorageFull answers a transaction while the spool is under its
// free-space reserve: RFC 5321's 452 and RFC 3463's X.3.1, mail system
// full. Clients retry later; deliveries meanwhile free space.
var errStorageFull = smtpErr(reply.New(452, "4.3.1", "Insufficient system storage, try again later"))

// roomForMail refuses a new transaction, at MAIL FROM and again before
// DATA is read, while the spool is under its free-space reserve.
func (se *session) roomForMail() error {
	return se.s.roomForMail(se.ip, se.from)
}

// sanitize keeps a client-supplied name from breaking the trace field.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' {
			return '_'
		}
		return r
	}, s)
}

func (se *session) reject(reason string, err *smtp.SMTPError, kv ...any) error {
	return se.s.refuse(se.ip, se.from, reason, err, kv...)
}

func (se *session) endTxn() {
	if se.txnEnd != nil {
		se.txnEnd()
		se.txnEnd = nil
	}
	se.inTxn = false
	se.from, se.rcpts, se.dropped, se.seen = "", nil, nil, nil
	se.opts = smtp.MailOptions{}
}

// Reset implements smtp.Session.
func (se *session) Reset() {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.endTxn()
}

// Logout implements smtp.Session.
func (se *session) Logout() error {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.loggedOut = true
	se.endTxn()
	return nil
}

// authCache remembers successful (tenant, password) checks for a while,
// so that clients opening many sessions do not cost a bcrypt each.
type authCache struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

const authCacheTTL = 5 * time.Minute

func authKey(t *tenant.Tenant, pass string) [32]byte {
	return sha256.Sum256([]byte(t.Name + "\x00" + t.PasswordHash + "\x00" + pass))
}

func (c *authCache) ok(t *tenant.Tenant, pass string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[authKey(t, pass)]
	return ok && time.Now().Before(exp)
}

func (c *authCache) remember(t *tenant.Tenant, pass string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[[32]byte]time.Time{}
	}
	c.m[authKey(t, pass)] = time.Now().Add(authCacheTTL)
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): two base64 prompts, user then password.
type loginServer struct {
	check    func(user, pass string) error
	user     string
	gotUser  bool
	finished bool
}

// Next implements sasl.Server.
func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case l.finished:
		return nil, true, errors.New("LOGIN: unexpected response")
	case !l.gotUser:
		if response == nil {
			return []byte("Username:"), false, nil
		}
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		l.finished = true
		if err := l.check(l.user, string(response)); err != nil {
			return nil, true, err
		}
		return nil, true, nil
	}
}
