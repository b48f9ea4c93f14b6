// Package dsn writes delivery status notifications (RFC 3464): the
// multipart/report messages that tell a sender which recipients failed,
// were delayed or were relayed, and why.
//
// A DSN has three parts: a plain-language explanation for the person who
// reads it, the machine-readable message/delivery-status part (one block per
// recipient with Action, Status, Remote-MTA and Diagnostic-Code), and the
// original message — in full when the sender asked RET=FULL and it is not
// too large, otherwise its header only (text/rfc822-headers). DSNs are sent
// with the null reverse-path and carry Auto-Submitted: auto-replied, so no
// conforming system ever answers one with another (no bounce loops).
package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"corriere/core/message"
	"corriere/core/reply"
)

// Action values of RFC 3464 section 2.3.3.
const (
	Failed    = "failed"
	Delayed   = "delayed"
	Delivered = "delivered"
	Relayed   = "relayed"
)

// MaxFullReturn is the largest original returned whole with RET=FULL; larger
// ones are returned as headers only, as most MTAs do.
const MaxFullReturn = 2 << 20

// Recipient is the report for one recipient.
type Recipient struct {
	// Addr is the final recipient address.
	Addr string
	// ORCPT is the original recipient as given with ORCPT ("rfc822;a@b").
	ORCPT string
	// Action is Failed, Delayed, Delivered or Relayed.
	Action string
	// Status is the enhanced status code.
	Status reply.Status
	// RemoteMTA is the MX host that gave Diagnostic, if any.
	RemoteMTA string
	// Diagnostic is the remote server's reply, if there was one.
	Diagnostic *reply.Reply
	// Reason explains the outcome in plain language when there was no
	// remote reply (DNS failure, expiry).
	Reason string
	// LastAttempt is when delivery was last tried.
	LastAttempt time.Time
	// WillRetryUntil is when a delayed recipient expires.
	WillRetryUntil time.Time
}

// Report is everything needed to write one DSN.
type Report struct {
	// ReportingMTA is this node's host name.
	ReportingMTA string
	// To is where the DSN goes: the envelope sender, or the author of a
	// re-enveloped message.
	To string
	// EnvID is the original ENVID parameter.
	EnvID string
	// Arrival is when the original message was accepted.
	Arrival time.Time
	// Ret is the original RET parameter.
	Ret message.Ret
	// Original is the original message content (header and body).
	Original []byte
	// Recipients are the recipients reported on.
	Recipients []Recipient
	// Forwarded marks a DSN sent to the author of a re-enveloped message:
	// the explanation then says that the platform sent on their behalf.
	Forwarded bool
	// Now is the report date.
	Now time.Time
}

// Build returns the DSN as a complete RFC 5322 message with CRLF line
// endings.
func Build(r *Report) ([]byte, error) {
	if len(r.Recipients) == 0 {
		return nil, fmt.Errorf("dsn: report without recipients")
	}
	if r.To == "" {
		return nil, fmt.Errorf("dsn: no recipient for the report (null sender)")
	}
	boundary := randomToken()
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }

	origHeader, origID := splitOriginal(r.Original)
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", r.ReportingMTA)
	w("To: <%s>", r.To)
	w("Subject: %s", subject(r))
	w("Date: %s", r.Now.Format(time.RFC1123Z))
	w("Message-ID: <%s.dsn@%s>", randomToken(), r.ReportingMTA)
	if origID != "" {
		w("In-Reply-To: %s", origID)
		w("References: %s", origID)
	}
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")

	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("Content-Transfer-Encoding: 8bit")
	w("")
	writeExplanation(&b, r)
	w("")

	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", r.ReportingMTA)
	if r.EnvID != "" {
		w("Original-Envelope-Id: %s", r.EnvID)
	}
	if !r.Arrival.IsZero() {
		w("Arrival-Date: %s", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		w("")
		if rc.ORCPT != "" {
			w("Original-Recipient: %s", rc.ORCPT)
		}
		w("Final-Recipient: rfc822; %s", rc.Addr)
		w("Action: %s", rc.Action)
		w("Status: %s", statusOf(rc))
		if rc.RemoteMTA != "" {
			w("Remote-MTA: dns; %s", rc.RemoteMTA)
		}
		if rc.Diagnostic != nil {
			w("Diagnostic-Code: smtp; %s", rc.Diagnostic.String())
		} else if rc.Reason != "" {
			w("X-Corriere-Reason: %s", oneLine(rc.Reason))
		}
		if !rc.LastAttempt.IsZero() {
			w("Last-Attempt-Date: %s", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			w("Will-Retry-Until: %s", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	w("")

	w("--%s", boundary)
	if r.Ret == message.RetFull && len(r.Original) <= MaxFullReturn {
		w("Content-Type: message/rfc822")
		w("")
		b.Write(r.Original)
		if !bytes.HasSuffix(r.Original, []byte("\r\n")) {
			w("")
		}
	} else {
		w("Content-Type: text/rfc822-headers")
		w("")
		b.Write(origHeader)
	}
	w("--%s--", boundary)
	return b.Bytes(), nil
}

func subject(r *Report) string {
	switch r.Recipients[0].Action {
	case Delayed:
		return "Delivery Status Notification (Delay)"
	case Delivered, Relayed:
		return "Delivery Status Notification (Success)"
	}
	return "Undelivered Mail Returned to Sender"
}

func writeExplanation(b *bytes.Buffer, r *Report) {
	line := func(s string) { b.WriteString(s + "\r\n") }
	line("This is the mail system at " + r.ReportingMTA + ".")
	line("")
	switch r.Recipients[0].Action {
	case Delayed:
		line("Your message has not been delivered yet to the recipients below.")
		line("The mail system keeps trying; you do not need to send it again.")
	case Delivered, Relayed:
		line("Your message was delivered (or passed on) to the recipients below.")
	default:
		line("Your message could not be delivered to the recipients below.")
		line("This is a permanent failure: the mail system has stopped trying.")
	}
	if r.Forwarded {
		line("")
		line("You receive this notice because the message was sent on your behalf")
		line("through a delivery platform, with your address as its author.")
	}
	line("")
	for _, rc := range r.Recipients {
		line("<" + rc.Addr + ">:")
		switch {
		case rc.Diagnostic != nil && rc.RemoteMTA != "":
			line("    " + rc.RemoteMTA + " said: " + oneLine(rc.Diagnostic.String()))
		case rc.Diagnostic != nil:
			line("    " + oneLine(rc.Diagnostic.String()))
		}
		if rc.Reason != "" {
			line("    " + oneLine(rc.Reason))
		}
	}
}

func statusOf(rc Recipient) string {
	if !rc.Status.IsZero() {
		return rc.Status.String()
	}
	if rc.Diagnostic != nil {
		return rc.Diagnostic.EffectiveStatus().String()
	}
	switch rc.Action {
	case Delayed:
		return "4.0.0"
	case Delivered, Relayed:
		return "2.0.0"
	}
	return "5.0.0"
}

// splitOriginal returns the original's header section (up to and including
// the blank line) and its Message-ID.
func splitOriginal(orig []byte) (header []byte, msgID string) {
	end := bytes.Index(orig, []byte("\r\n\r\n"))
	if end < 0 {
		header = orig
	} else {
		header = orig[:end+4]
	}
	h, _, err := message.Parse(header)
	if err == nil {
		msgID = strings.TrimSpace(h.Get("Message-Id"))
	}
	return header, msgID
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func randomToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
