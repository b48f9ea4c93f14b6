// Package message holds a mail message as it moves through Corriere: the SMTP
// envelope with its DSN parameters (RFC 3461), the header fields, the body,
// and what ingest and policy learnt about it (tenant, class, campaign).
//
// The header is a go-message textproto.Header, which keeps every field's raw
// bytes: fields nobody edits leave exactly as they arrived, so signatures made
// upstream stay valid. The body is never parsed or copied here.
package message

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Class is the kind of traffic a message belongs to; it selects queues,
// egress IPs and priority.
type Class string

// The classes Corriere knows. Policy may only return one of these.
const (
	Newsletter    Class = "newsletter"
	Transactional Class = "transactional"
	Critical      Class = "critical"
	Personal      Class = "personal"
)

// Classes lists every class, in priority order: critical first.
var Classes = []Class{Critical, Transactional, Personal, Newsletter}

// ParseClass returns the Class named s, or false.
func ParseClass(s string) (Class, bool) {
	for _, c := range Classes {
		if string(c) == s {
			return c, true
		}
	}
	return "", false
}

// Notify holds the RFC 3461 NOTIFY parameter of a recipient as bit flags.
// The zero value means the client gave no NOTIFY, which RFC 3461 section
// 4.1 says to treat as FAILURE (and DELAY at the MTA's discretion).
type Notify uint8

// NOTIFY flags.
const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// Wants reports whether a notification of kind k (NotifySuccess,
// NotifyFailure or NotifyDelay) should be sent.
func (n Notify) Wants(k Notify) bool {
	if n == 0 {
		return k == NotifyFailure || k == NotifyDelay
	}
	return n&NotifyNever == 0 && n&k != 0
}

// String formats n as the NOTIFY parameter value ("" when unset).
func (n Notify) String() string {
	if n == 0 {
		return ""
	}
	if n&NotifyNever != 0 {
		return "NEVER"
	}
	var parts []string
	for _, f := range []struct {
		flag Notify
		name string
	}{{NotifySuccess, "SUCCESS"}, {NotifyFailure, "FAILURE"}, {NotifyDelay, "DELAY"}} {
		if n&f.flag != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ",")
}

// Ret is the RFC 3461 RET parameter: how much of the message a DSN returns.
type Ret string

// RET values. The empty Ret lets the MTA choose; Corriere then returns
// headers only, which is what most MTAs do for large messages.
const (
	RetFull Ret = "FULL"
	RetHdrs Ret = "HDRS"
)

// Recipient is one envelope recipient with its DSN parameters.
type Recipient struct {
	// Addr is the normalised mailbox (see package address).
	Addr string
	// ORCPT is the original recipient, "rfc822;user@example.org", if given.
	ORCPT string
	// Notify is the NOTIFY parameter.
	Notify Notify
}

// Envelope is the SMTP envelope of a message.
type Envelope struct {
	// Sender is the reverse-path; "" is the null sender of bounces.
	Sender string
	// Recipients are the forward-paths accepted for this message.
	Recipients []Recipient
	// Ret is the DSN RET parameter.
	Ret Ret
	// EnvID is the DSN ENVID parameter (xtext-decoded).
	EnvID string
	// UTF8 records that the client used SMTPUTF8 (RFC 6531).
	UTF8 bool
}

// Message is one message with its envelope, header, body and ingest facts.
type Message struct {
	// ID is the spool identifier, unique and ordered by acceptance time.
	ID string
	Envelope
	// Header holds the header fields; edits keep untouched fields byte-exact.
	Header textproto.Header
	// Body is the raw body after the blank line that ends the header.
	Body []byte

	// Tenant is the tenant the message belongs to: the authenticated user
	// at ingest, possibly changed by classification.
	Tenant string
	// AuthUser is the SASL identity the client authenticated as, if any.
	AuthUser string
	// ClientIP is the submitting client's address.
	ClientIP string
	// Helo is the name the client gave in EHLO/HELO.
	Helo string
	// Received is when the message was accepted.
	Received time.Time

	// Class, Campaign and Priority are set by classification.
	Class    Class
	Campaign string
	Priority int
	// Author, when set, is the address that receives this message's DSNs
	// instead of the envelope sender: the real author of a re-enveloped
	// message.
	Author string
}

// Parse splits raw RFC 5322 content into header and body. Content without
// a blank line is all header (a message may have no body).
func Parse(raw []byte) (textproto.Header, []byte, error) {
	src := bytes.NewReader(raw)
	br := bufio.NewReaderSize(src, 4096)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return textproto.Header{}, nil, fmt.Errorf("message: read header: %w", err)
	}
	// What neither src nor br has handed out yet is the body.
	consumed := len(raw) - src.Len() - br.Buffered()
	return h, raw[consumed:], nil
}

// WriteTo writes the header and body as they will go on the wire.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if err := textproto.WriteHeader(cw, m.Header); err != nil {
		return cw.n, fmt.Errorf("message: write header: %w", err)
	}
	if _, err := cw.Write(m.Body); err != nil {
		return cw.n, fmt.Errorf("message: write body: %w", err)
	}
	return cw.n, nil
}

// Bytes returns the full content, header and body.
func (m *Message) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(len(m.Body) + 2048)
	_, _ = m.WriteTo(&b) // writes to a bytes.Buffer do not fail
	return b.Bytes()
}

// HeaderBytes returns the header section including the blank line.
func (m *Message) HeaderBytes() []byte {
	var b bytes.Buffer
	_ = textproto.WriteHeader(&b, m.Header) // writes to a bytes.Buffer do not fail
	return b.Bytes()
}

// Size returns the size of the content in octets, as SIZE and policy see it.
func (m *Message) Size() int {
	return len(m.HeaderBytes()) + len(m.Body)
}

// Domains returns the distinct recipient domains, in first-seen order.
func (m *Message) Domains() []string {
	seen := make(map[string]bool, len(m.Recipients))
	var out []string
	for _, r := range m.Recipients {
		d := domainOf(r.Addr)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
