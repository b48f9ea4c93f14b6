package dns

import (
	"corriere/core/reply"
)

// Kind classifies a lookup failure by what a mail sender should do about it.
type Kind int

const (
	// NotFound means the name does not exist (NXDOMAIN), has no records of
	// the asked type, or, for MX, has neither MX nor address records. It is
	// permanent.
	NotFound Kind = iota + 1
	// NullMX means the domain publishes a null MX (RFC 7505): it accepts no
	// mail. It is permanent.
	NullMX
	// Temporary means no usable answer came back: SERVFAIL, REFUSED, a
	// timeout, a network error, a mismatched reply, or a cancelled context.
	// A later retry may succeed.
	Temporary
)

// String returns the name of k.
func (k Kind) String() string {
	switch k {
	case NotFound:
		return "not found"
	case NullMX:
		return "null MX"
	case Temporary:
		return "temporary"
	default:
		return "unknown"
	}
}

// Error is the error every lookup returns. Find it in an error chain with
// errors.As.
type Error struct {
	// Name is the looked-up name, in lower case without the trailing dot.
	Name string
	// Kind says whether the failure is permanent and why.
	Kind Kind
	// Detail is the cause, readable by a person, naming the server that
	// answered where there was one.
	Detail string

	// err is the underlying error, such as context.DeadlineExceeded, when
	// there is one.
	err error
}

// Error returns a sentence naming the name and the cause, for example
// "dns: example.org: domain does not exist (NXDOMAIN from 127.0.0.1:53)".
func (e *Error) Error() string { return "dns: " + e.Name + ": " + e.Detail }

// Unwrap returns the underlying error, such as a context error, or nil.
func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether a later retry of the lookup may succeed.
func (e *Error) Temporary() bool { return e.Kind == Temporary }

// Reply returns the SMTP outcome of the failure, for a DSN or a delivery
// status: 550 5.1.2 for NotFound, 556 5.1.10 for NullMX (RFC 7505 section
// 4.2) and 451 4.4.3 for Temporary.
func (e *Error) Reply() *reply.Reply {
	switch e.Kind {
	case NotFound:
		return reply.New(550, "5.1.2", "Cannot resolve "+e.Name+": "+e.Detail)
	case NullMX:
		return reply.New(556, "5.1.10", e.Name+" does not accept mail (null MX, RFC 7505)")
	default:
		return reply.New(451, "4.4.3", e.Name+": DNS lookup failed temporarily: "+e.Detail)
	}
}

// As lets errors.As, and so reply.From, find e's SMTP reply in an error
// chain, so delivery code that handles replies needs no DNS-specific case.
func (e *Error) As(target any) bool {
	if p, ok := target.(**reply.Reply); ok {
		*p = e.Reply()
		return true
	}
	return false
}
