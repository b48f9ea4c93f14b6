package smtpclient

import (
	"errors"
	"strings"

	"corriere/core/reply"
)

// Stages of an SMTP session, as reported in Error.Stage.
const (
	StageConnect  = "connect"
	StageGreeting = "greeting"
	StageHelo     = "helo"
	StageStartTLS = "starttls"
	StageMail     = "mail"
	StageRcpt     = "rcpt"
	StageData     = "data"
	StageRset     = "rset"
	StageNoop     = "noop"
	StageQuit     = "quit"
)

var (
	// ErrTLSFailed is wrapped by the Error of a STARTTLS whose handshake
	// failed. The connection is then unusable; a caller in opportunistic
	// mode may redial the host with TLSDisabled.
	ErrTLSFailed = errors.New("TLS handshake failed")

	// ErrTLSUnavailable is wrapped by the Error of a TLSRequired dial to a
	// server that does not offer STARTTLS or refuses it.
	ErrTLSUnavailable = errors.New("STARTTLS unavailable")

	// ErrBroken is wrapped by the Error of an operation on a client whose
	// connection failed or was closed.
	ErrBroken = errors.New("connection broken or closed")
)

// Error is a failure of an SMTP session: the server's reply at some stage,
// a network error, or both. reply.From recovers the Reply from an error
// chain holding an *Error.
type Error struct {
	// Stage is where the session failed, one of the Stage constants.
	Stage string
	// Reply is the server's reply, nil when the failure was not a reply
	// (network error, timeout, protocol violation).
	Reply *reply.Reply
	// Err is the underlying error, nil when the failure is just Reply.
	Err error
}

// Error formats e as "smtpclient: stage: reply: err".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtpclient: ")
	b.WriteString(e.Stage)
	if e.Reply != nil {
		b.WriteString(": ")
		b.WriteString(e.Reply.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err and Reply, those that are set.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Reply != nil {
		errs = append(errs, e.Reply)
	}
	return errs
}

// Temporary reports whether trying again later may succeed: true for
// network errors and 4xx replies, false for 5xx replies. A failure to get
// the TLS the options required is temporary whatever the server replied,
// since the remedy is to retry later.
func (e *Error) Temporary() bool {
	if e.Reply == nil || errors.Is(e.Err, ErrTLSUnavailable) {
		return true
	}
	return !e.Reply.Permanent()
}
