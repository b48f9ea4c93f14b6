// Package reply is Corriere's one type for mail outcomes: an SMTP reply code,
// an RFC 3463 enhanced status code and a human sentence.
//
// The same *Reply travels from ingest (what we answer a client), through
// delivery (what a remote MX answered us), to Lua verdicts and DSNs. A *Reply
// is an error, so a function can return it where an error is expected and a
// caller can recover it with From.
package reply

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Status is an RFC 3463 enhanced mail system status code, class.subject.detail,
// for example 5.1.1. The zero Status means "no enhanced code".
type Status struct {
	Class, Subject, Detail int
}

// IsZero reports whether s carries no enhanced code.
func (s Status) IsZero() bool { return s == Status{} }

// String formats s as "C.S.D", or "" for the zero Status.
func (s Status) String() string {
	if s.IsZero() {
		return ""
	}
	return strconv.Itoa(s.Class) + "." + strconv.Itoa(s.Subject) + "." + strconv.Itoa(s.Detail)
}

// ParseStatus parses "C.S.D" where C is 2, 4 or 5, S has at most three digits
// and D at most three digits (RFC 3463 section 2).
func ParseStatus(s string) (Status, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Status{}, false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return Status{}, false
		}
		v := 0
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return Status{}, false
			}
			v = v*10 + int(c-'0')
		}
		n[i] = v
	}
	if n[0] != 2 && n[0] != 4 && n[0] != 5 {
		return Status{}, false
	}
	return Status{n[0], n[1], n[2]}, true
}

// Reply is an SMTP reply: three-digit code, optional enhanced status, text.
// Multi-line texts are joined with "\n".
type Reply struct {
	// Code is the three-digit SMTP reply code (RFC 5321 section 4.2).
	Code int
	// Status is the enhanced status code; zero when the server sent none.
	Status Status
	// Text is the human-readable part, without code and enhanced code.
	Text string
}

// New returns a reply with the given code, enhanced status ("4.7.1", or ""
// for none) and text. It panics if enhanced is not a valid status, because
// replies built in code are constants of the program.
func New(code int, enhanced, text string) *Reply {
	r := &Reply{Code: code, Text: text}
	if enhanced != "" {
		st, ok := ParseStatus(enhanced)
		if !ok {
			panic("reply: invalid enhanced status " + strconv.Quote(enhanced))
		}
		r.Status = st
	}
	return r
}

// Temporary reports whether r is a transient failure (4xx).
func (r *Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports whether r is a permanent failure (5xx).
func (r *Reply) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

// Success reports whether r is a positive completion (2xx).
func (r *Reply) Success() bool { return r.Code >= 200 && r.Code < 300 }

// Error formats r as a single line, "550 5.1.1 text"; multi-line texts are
// joined with spaces.
func (r *Reply) Error() string { return r.String() }

// String formats r as a single line, "550 5.1.1 text".
func (r *Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if !r.Status.IsZero() {
		b.WriteByte(' ')
		b.WriteString(r.Status.String())
	}
	if r.Text != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(r.Text, "\n", " "))
	}
	return b.String()
}

// EffectiveStatus returns r's enhanced status, or one derived from the reply
// code's class (X.0.0) when the server sent none, as RFC 3464 DSNs require a
// status for every recipient.
func (r *Reply) EffectiveStatus() Status {
	if !r.Status.IsZero() {
		return r.Status
	}
	switch {
	case r.Success():
		return Status{2, 0, 0}
	case r.Temporary():
		return Status{4, 0, 0}
	default:
		return Status{5, 0, 0}
	}
}

// From returns the *Reply in err's chain, or nil.
func From(err error) *Reply {
	var r *Reply
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// Parse parses the lines of one SMTP reply as read from the wire, without
// their CRLF: "250-first", "250 last". All lines must carry the same code.
// An enhanced status is recognised when the first line's text starts with one
// whose class matches the code's class (RFC 2034 section 4); it is then
// stripped from every line.
func Parse(lines []string) (*Reply, error) {
	if len(lines) == 0 {
		return nil, errors.New("reply: empty reply")
	}
	var code int
	texts := make([]string, 0, len(lines))
	for i, line := range lines {
		c, text, last, err := ParseLine(line)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			code = c
		} else if c != code {
			return nil, fmt.Errorf("reply: code changed from %d to %d inside a multi-line reply", code, c)
		}
		if last != (i == len(lines)-1) {
			return nil, fmt.Errorf("reply: line %d: continuation marker out of place in %q", i+1, line)
		}
		texts = append(texts, text)
	}
	r := &Reply{Code: code}
	first, rest, _ := strings.Cut(texts[0], " ")
	if st, valid := ParseStatus(first); valid && st.Class == code/100 {
		r.Status = st
		texts[0] = rest
		prefix := first + " "
		for i := 1; i < len(texts); i++ {
			texts[i] = strings.TrimPrefix(texts[i], prefix)
		}
	}
	r.Text = strings.Join(texts, "\n")
	return r, nil
}

// ParseLine parses one reply line, returning its code, its text, and whether
// it is the last line of the reply ("250 x") rather than a continuation
// ("250-x").
func ParseLine(line string) (code int, text string, last bool, err error) {
	if len(line) < 3 {
		return 0, "", false, fmt.Errorf("reply: line too short: %q", line)
	}
	for _, c := range []byte(line[:3]) {
		if c < '0' || c > '9' {
			return 0, "", false, fmt.Errorf("reply: no reply code in %q", line)
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 200 || code > 599 {
		return 0, "", false, fmt.Errorf("reply: code %d out of range in %q", code, line)
	}
	switch {
	case len(line) == 3:
		return code, "", true, nil
	case line[3] == ' ':
		return code, line[4:], true, nil
	case line[3] == '-':
		return code, line[4:], false, nil
	default:
		return 0, "", false, fmt.Errorf("reply: bad separator after code in %q", line)
	}
}
