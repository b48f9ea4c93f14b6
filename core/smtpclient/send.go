package smtpclient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"corriere/core/reply"
)

// Rcpt is one recipient of a transaction.
type Rcpt struct {
	// Addr is the mailbox, without angle brackets.
	Addr string
	// Notify is the DSN NOTIFY parameter: "NEVER", or a comma-separated
	// list of SUCCESS, FAILURE and DELAY; "" sends none. It is sent only to
	// servers that advertise DSN.
	Notify string
	// ORCPT is the DSN original recipient as "addr-type;address", e.g.
	// "rfc822;x@example.org", unencoded: Send applies the xtext encoding of
	// RFC 3461 section 4, and sends a non-ASCII rfc822 address as type
	// utf-8 (RFC 6533). "" sends none. It is sent only to servers that
	// advertise DSN.
	ORCPT string
}

// Envelope is the envelope of one transaction.
type Envelope struct {
	// From is the reverse-path, without angle brackets; "" for bounces.
	From string
	// Rcpts are the recipients, in the order their replies are reported.
	Rcpts []Rcpt
	// Size is the message size announced with SIZE=; 0 means the length
	// of the content.
	Size int64
	// Ret is the DSN RET parameter, FULL or HDRS; "" sends none.
	Ret string
	// EnvID is the DSN envelope identifier, printable ASCII of at most 100
	// characters, unencoded; "" sends none.
	EnvID string
	// UTF8 says the message needs SMTPUTF8 (RFC 6531), for its headers or
	// addresses. A non-ASCII address in the envelope implies it.
	UTF8 bool
	// EightBit says the content has 8-bit data, announced with
	// BODY=8BITMIME when the server supports it. Without 8BITMIME the
	// content is sent unchanged, as MTAs commonly do, since converting it
	// would break its DKIM signatures.
	EightBit bool
	// Header holds header fields sent before the content, each ending in
	// CRLF: a field that differs per transaction (a reference header)
	// then costs no copy of the message. Size must count them. nil sends
	// none.
	Header []byte
}

// Result holds the replies of one transaction.
type Result struct {
	// Mail is the reply to MAIL FROM, or one the client made up (553
	// 5.6.7, 550 5.6.9, 552 5.3.4) without sending anything, when the
	// server's extensions show it could not take the message. It is nil
	// only when the connection failed before MAIL was answered.
	Mail *reply.Reply
	// Rcpts are the replies to RCPT TO, in the order of Envelope.Rcpts;
	// an entry is nil when that RCPT was not sent or not answered. With
	// PIPELINING, recipients are answered even when MAIL was refused.
	Rcpts []*reply.Reply
	// Data is the reply that settles the message for the accepted
	// recipients: the reply to DATA when it is not 354, otherwise the reply
	// after the content. It is nil when no recipient was accepted or the
	// connection failed before the reply.
	Data *reply.Reply
}

// Outcome returns the reply that decides the fate of recipient i: the MAIL
// reply when MAIL failed, the recipient's reply when RCPT failed, and the
// Data reply otherwise. It is nil when the transaction did not get that far,
// which after a connection failure means the outcome is unknown.
func (r *Result) Outcome(i int) *reply.Reply {
	switch {
	case r.Mail == nil || !r.Mail.Success():
		return r.Mail
	case r.Rcpts[i] == nil || !r.Rcpts[i].Success():
		return r.Rcpts[i]
	}
	return r.Data
}

// Send runs one mail transaction: MAIL, RCPT for each recipient, DATA and
// the content, pipelined when the server supports it. Every reply goes into
// the Result, which is never nil. Refusals are replies, not errors: the
// error reports an invalid envelope or a context that had already ended
// (nothing was sent, the client is still usable), or a failed connection (an
// *Error; the client is then Broken, and the replies already in the Result
// are final). After a refused
// transaction Send resets the session, so that the next Send can follow.
//
// content is the message as stored, headers and body; Send dot-stuffs it and
// sends every line ending as CRLF without copying it.
func (c *Client) Send(ctx context.Context, env Envelope, content []byte) (*Result, error) {
	res := &Result{Rcpts: make([]*reply.Reply, len(env.Rcpts))}
	if err := env.validate(); err != nil {
		return res, err
	}
	if c.broken {
		return res, &Error{Stage: StageMail, Err: ErrBroken}
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("smtpclient: send: %w", context.Cause(ctx))
	}
	size := env.Size
	if size <= 0 {
		size = int64(len(env.Header) + len(content))
	}
	utf8 := env.needsUTF8()
	if res.Mail = c.refuse(env, size, utf8); res.Mail != nil {
		return res, nil
	}
	stop := c.watch(ctx)
	defer stop()
	c.writeMail(env, size, utf8)
	if c.caps.pipelining {
		return res, c.sendPipelined(ctx, env, content, res)
	}
	return res, c.sendLockstep(ctx, env, content, res)
}

// refuse returns the reply the client gives itself when the server's
// extensions show the transaction cannot succeed, or nil.
func (c *Client) refuse(env Envelope, size int64, utf8 bool) *reply.Reply {
	if utf8 && !c.caps.smtpUTF8 {
		if !env.asciiAddresses() {
			return reply.New(553, "5.6.7", "non-ASCII address needs SMTPUTF8, which the server does not offer")
		}
		return reply.New(550, "5.6.9", "message needs SMTPUTF8, which the server does not offer")
	}
	if c.caps.maxSize > 0 && size > c.caps.maxSize {
		return reply.New(552, "5.3.4", fmt.Sprintf("message size %d exceeds the server's limit of %d", size, c.caps.maxSize))
	}
	return nil
}

// sendPipelined sends the MAIL written by Send, every RCPT and DATA in one
// group, then reads their replies in order (RFC 2920 section 3.1). The
// replies to a group of any realistic size fit in the socket buffers, so
// writing the whole group before reading cannot deadlock; a server that
// stops reading meets the command timeout.
func (c *Client) sendPipelined(ctx context.Context, env Envelope, content []byte, res *Result) error {
	for _, rc := range env.Rcpts {
		c.writeRcpt(rc)
	}
	c.w.WriteString("DATA\r\n")
	var err error
	if res.Mail, err = c.roundTrip(ctx, StageMail, c.opts.CommandTimeout); err != nil {
		return err
	}
	accepted := 0
	for i := range env.Rcpts {
		if res.Rcpts[i], err = c.roundTrip(ctx, StageRcpt, c.opts.CommandTimeout); err != nil {
			return err
		}
		if res.Rcpts[i].Success() {
			accepted++
		}
	}
	proceed := res.Mail.Success() && accepted > 0
	r, err := c.roundTrip(ctx, StageData, c.opts.CommandTimeout)
	if proceed && r != nil && r.Code != 354 {
		res.Data = r
	}
	switch {
	case err != nil:
		return err
	case !proceed && r.Code == 354:
		// RFC 2920 section 3.1: a server may accept DATA although it
		// accepted no recipient; end the empty message at once.
		c.w.WriteString(".\r\n")
		if _, err := c.roundTrip(ctx, StageData, c.opts.CommandTimeout); err != nil {
			return err
		}
		return c.rset(ctx)
	case r.Code != 354:
		return c.rset(ctx)
	}
	return c.sendContent(ctx, env.Header, content, res)
}

// sendLockstep sends the MAIL written by Send, then each RCPT and DATA,
// waiting for each reply before the next command.
func (c *Client) sendLockstep(ctx context.Context, env Envelope, content []byte, res *Result) error {
	var err error
	if res.Mail, err = c.roundTrip(ctx, StageMail, c.opts.CommandTimeout); err != nil {
		return err
	}
	if !res.Mail.Success() {
		return c.rset(ctx)
	}
	accepted := 0
	for i, rc := range env.Rcpts {
		c.writeRcpt(rc)
		if res.Rcpts[i], err = c.roundTrip(ctx, StageRcpt, c.opts.CommandTimeout); err != nil {
			return err
		}
		if res.Rcpts[i].Success() {
			accepted++
		}
	}
	if accepted == 0 {
		return c.rset(ctx)
	}
	r, err := c.command(ctx, StageData, "DATA")
	if r != nil && r.Code != 354 {
		res.Data = r
	}
	switch {
	case err != nil:
		return err
	case r.Code != 354:
		return c.rset(ctx)
	}
	return c.sendContent(ctx, env.Header, content, res)
}

// sendContent sends the header fields and the content after a 354 and
// reads the final reply, all within DataTimeout.
func (c *Client) sendContent(ctx context.Context, header, content []byte, res *Result) error {
	if err := c.setDeadline(ctx, c.opts.DataTimeout); err != nil {
		return c.fail(ctx, StageData, nil, err)
	}
	c.w.Write(header) // validated: whole CRLF lines, none starting with a dot
	writeData(c.w, content)
	var err error
	res.Data, err = c.roundTrip(ctx, StageData, 0)
	return err
}

// writeMail writes the MAIL command with the parameters the server
// supports.
func (c *Client) writeMail(env Envelope, size int64, utf8 bool) {
	w := c.w
	w.WriteString("MAIL FROM:<")
	w.WriteString(env.From)
	w.WriteByte('>')
	if c.caps.size {
		w.WriteString(" SIZE=")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), size, 10))
	}
	if env.EightBit && c.caps.eightBitMIME {
		w.WriteString(" BODY=8BITMIME")
	}
	if utf8 {
		w.WriteString(" SMTPUTF8")
	}
	if c.caps.dsn {
		if env.Ret != "" {
			w.WriteString(" RET=")
			writeUpper(w, env.Ret)
		}
		if env.EnvID != "" {
			w.WriteString(" ENVID=")
			writeXtext(w, env.EnvID)
		}
	}
	w.WriteString("\r\n")
}

// writeRcpt writes the RCPT command with the parameters the server
// supports.
func (c *Client) writeRcpt(rc Rcpt) {
	w := c.w
	w.WriteString("RCPT TO:<")
	w.WriteString(rc.Addr)
	w.WriteByte('>')
	if c.caps.dsn {
		if rc.Notify != "" {
			w.WriteString(" NOTIFY=")
			writeUpper(w, rc.Notify)
		}
		if rc.ORCPT != "" {
			w.WriteString(" ORCPT=")
			writeORCPT(w, rc.ORCPT)
		}
	}
	w.WriteString("\r\n")
}

// validate reports the first field of env that cannot be sent.
func (env *Envelope) validate() error {
	if len(env.Rcpts) == 0 {
		return fmt.Errorf("smtpclient: envelope has no recipients")
	}
	if hasControl(env.From) {
		return fmt.Errorf("smtpclient: reverse-path %q has control characters", env.From)
	}
	if env.Ret != "" && !strings.EqualFold(env.Ret, "FULL") && !strings.EqualFold(env.Ret, "HDRS") {
		return fmt.Errorf("smtpclient: invalid RET %q", env.Ret)
	}
	if len(env.EnvID) > 100 || hasControl(env.EnvID) || !isASCII(env.EnvID) {
		return fmt.Errorf("smtpclient: invalid ENVID %q", env.EnvID)
	}
	if h := env.Header; len(h) > 0 && (h[0] == '.' || !bytes.HasSuffix(h, []byte("\r\n")) || bytes.Contains(h, []byte("\n.")) ||
		bytes.Count(h, []byte("\n")) != bytes.Count(h, []byte("\r\n")) || bytes.Count(h, []byte("\r")) != bytes.Count(h, []byte("\r\n"))) {
		return fmt.Errorf("smtpclient: header fields %q are not CRLF lines that need no dot-stuffing", h)
	}
	for i, rc := range env.Rcpts {
		if rc.Addr == "" || hasControl(rc.Addr) {
			return fmt.Errorf("smtpclient: recipient %d: invalid address %q", i, rc.Addr)
		}
		if rc.Notify != "" && !validNotify(rc.Notify) {
			return fmt.Errorf("smtpclient: recipient %d: invalid NOTIFY %q", i, rc.Notify)
		}
		if rc.ORCPT != "" && !validORCPT(rc.ORCPT) {
			return fmt.Errorf("smtpclient: recipient %d: invalid ORCPT %q", i, rc.ORCPT)
		}
	}
	return nil
}

// needsUTF8 reports whether the transaction needs SMTPUTF8.
func (env *Envelope) needsUTF8() bool { return env.UTF8 || !env.asciiAddresses() }

// asciiAddresses reports whether every envelope address is ASCII.
func (env *Envelope) asciiAddresses() bool {
	if !isASCII(env.From) {
		return false
	}
	for _, rc := range env.Rcpts {
		if !isASCII(rc.Addr) {
			return false
		}
	}
	return true
}

// validNotify reports whether s is "NEVER" or a list of SUCCESS, FAILURE
// and DELAY (RFC 3461 section 4.1), in any case.
func validNotify(s string) bool {
	if strings.EqualFold(s, "NEVER") {
		return true
	}
	for {
		kw, rest, more := strings.Cut(s, ",")
		if !strings.EqualFold(kw, "SUCCESS") && !strings.EqualFold(kw, "FAILURE") && !strings.EqualFold(kw, "DELAY") {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// validORCPT reports whether s is "addr-type;address" with an atom for the
// type and an address without control characters.
func validORCPT(s string) bool {
	typ, addr, ok := strings.Cut(s, ";")
	if !ok || typ == "" || addr == "" || hasControl(addr) {
		return false
	}
	for i := 0; i < len(typ); i++ {
		b := typ[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

// writeORCPT writes the value of an ORCPT parameter (RFC 3461 section
// 4.2). A non-ASCII address is sent with type utf-8 as utf-8-addr-xtext
// (RFC 6533 section 3), which a server without SMTPUTF8 can also read.
func writeORCPT(w *bufio.Writer, orcpt string) {
	typ, addr, _ := strings.Cut(orcpt, ";")
	if strings.EqualFold(typ, "utf-8") || strings.EqualFold(typ, "rfc822") && !isASCII(addr) {
		w.WriteString("utf-8;")
		writeUTF8AddrXtext(w, addr)
		return
	}
	w.WriteString(typ)
	w.WriteByte(';')
	writeXtext(w, addr)
}

const upperHex = "0123456789ABCDEF"

// writeXtext writes s encoded as xtext (RFC 3461 section 4): bytes outside
// "!" to "~", and "+" and "=", become "+" and two upper-case hex digits.
func writeXtext(w *bufio.Writer, s string) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= '!' && b <= '~' && b != '+' && b != '=' {
			w.WriteByte(b)
			continue
		}
		w.WriteByte('+')
		w.WriteByte(upperHex[b>>4])
		w.WriteByte(upperHex[b&0xf])
	}
}

// writeUTF8AddrXtext writes s encoded as utf-8-addr-xtext (RFC 6533
// section 3): characters outside "!" to "~", and "+", "=" and "\", become
// "\x{HEX}" with at least two upper-case hex digits.
func writeUTF8AddrXtext(w *bufio.Writer, s string) {
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			w.WriteByte(byte(r))
			continue
		}
		hex := strings.ToUpper(strconv.FormatInt(int64(r), 16))
		if len(hex) < 2 {
			hex = "0" + hex
		}
		w.WriteString(`\x{`)
		w.WriteString(hex)
		w.WriteByte('}')
	}
}

// writeUpper writes s upper-cased; s is ASCII.
func writeUpper(w *bufio.Writer, s string) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		w.WriteByte(b)
	}
}

// hasControl reports whether s contains a control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
