package bounce

import (
	"bytes"
	"errors"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"corriere/core/policy"
)

// Report kinds.
const (
	KindDSN       = "dsn"       // RFC 3464 multipart/report delivery-status
	KindText      = "text"      // a bounce in prose, without machine-readable fields
	KindARF       = "arf"       // RFC 5965 feedback report (or a provider's equivalent)
	KindAutoreply = "autoreply" // vacation and other automatic replies
)

// Report is what Parse finds in one message.
type Report struct {
	// Kind is KindDSN, KindText, KindARF, KindAutoreply, or "" when the
	// message is not a bounce, a feedback report or an automatic reply.
	Kind string
	// Subject and From are the message's own header fields (From as a bare
	// address when it parses).
	Subject, From string
	// Failures holds one entry per failed recipient (per reported
	// recipient for ARF, per delivered recipient for a success DSN, and the
	// sender for an automatic reply), in order of appearance.
	Failures []policy.BounceReport
	// Original is the returned original message or its header, when the
	// bounce carries it.
	Original []byte
}

// ErrEmpty is returned by Parse for an empty message.
var ErrEmpty = errors.New("bounce: empty message")

// Parse reads a raw message and reports the bounce, feedback report or
// automatic reply it carries. It is lenient: broken MIME, unknown charsets
// and truncated parts are read as well as they can be, and a message that is
// none of these yields a Report with an empty Kind. It never panics, and it
// looks at no more than the first 8 MiB of raw.
func Parse(raw []byte) (*Report, error) {
	return parse(raw, 0)
}

// parse is Parse at a nesting depth: a bounce may carry another bounce.
func parse(raw []byte, depth int) (*Report, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, ErrEmpty
	}
	e := readEntity(raw)
	r := &Report{
		Subject: headerText(e.header, "Subject"),
		From:    headerAddress(e.header, "From"),
	}
	r.Original = e.original()
	var failures []policy.BounceReport
	kind := ""
	for _, try := range []struct {
		kind  string
		parse func(*entity) []policy.BounceReport
	}{
		{KindARF, parseARF},
		{KindDSN, parseDSN},
		{KindText, parseSES},
		{KindText, parseText},
		{"", func(e *entity) []policy.BounceReport { return nested(e, r, depth) }},
		{KindText, parseTextUnnamed},
		{KindAutoreply, parseAutoreply},
	} {
		if failures = try.parse(e); len(failures) > 0 {
			// A parser may know better (an SES complaint is a feedback
			// report, a nested bounce keeps its own kind).
			kind = try.kind
			if failures[0].Kind != "" {
				kind = failures[0].Kind
			}
			break
		}
	}
	if kind == "" {
		return r, nil
	}
	if r.Original == nil {
		r.Original = e.inlineOriginal()
	}
	r.Kind = kind
	verdict := ""
	if kind == KindDSN || kind == KindText {
		verdict = carrierVerdict(e.errText())
		if strings.EqualFold(strings.TrimSpace(e.header.Get("X-SPASIGN")), "NG") {
			// au's spam filter marks the bounces of mail it refused.
			verdict = strings.TrimSpace("X-SPASIGN: NG " + verdict)
		}
	}
	for i := range failures {
		f := &failures[i]
		f.Kind = kind
		f.Subject = r.Subject
		f.From = r.From
		if verdict != "" && !strings.Contains(f.Diagnostic, verdict) {
			f.Diagnostic = verdict + " " + f.Diagnostic
		}
		finishFailure(f)
	}
	r.Failures = failures
	return r, nil
}

// nested reads a bounce about a bounce (a gateway returning the DSN it
// could not deliver): when e is a bounce whose prose names nobody and whose
// attached message is itself a bounce, the inner one names the failed
// recipients.
func nested(e *entity, r *Report, depth int) []policy.BounceReport {
	if depth > 0 || r.Original == nil || !looksLikeBounce(e) {
		return nil
	}
	inner, err := parse(r.Original, depth+1)
	if err != nil || inner.Kind == "" || inner.Kind == KindAutoreply {
		return nil
	}
	out := inner.Failures
	for i := range out {
		out[i].Kind = inner.Kind
	}
	return out
}

// original returns the body of the first message/rfc822 or
// text/rfc822-headers part.
func (e *entity) original() []byte {
	for _, p := range e.parts {
		switch p.mediaType {
		case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers":
			return p.body
		}
	}
	return nil
}

// inlineOriginal returns the returned message that a text bounce quotes
// after a separator line, if any.
func (e *entity) inlineOriginal() []byte {
	orig := e.quotedOriginal()
	if strings.TrimSpace(orig) == "" {
		return nil
	}
	return []byte(orig)
}

// maxErrText bounds the prose of a bounce that is searched for recipients
// and reasons; real bounces say what they have to say in a few lines.
const maxErrText = 256 << 10

// text returns the human-readable text of the message: its text/plain
// parts, or its text/html parts reduced to text when there is no plain
// text. It is computed once.
func (e *entity) text() string {
	if !e.textDone {
		e.textDone = true
		e.textVal = e.readText()
		e.errVal, e.origVal = splitOriginal(e.textVal)
		if len(e.errVal) > maxErrText {
			cut := strings.LastIndexByte(e.errVal[:maxErrText], '\n')
			if cut < 0 {
				cut = maxErrText
			}
			e.errVal = e.errVal[:cut]
		}
	}
	return e.textVal
}

// errText returns the part of the text before the returned message: the
// bounce's own prose.
func (e *entity) errText() string {
	e.text()
	return e.errVal
}

// quotedOriginal returns the returned message quoted in the text after a
// separator line, if any.
func (e *entity) quotedOriginal() string {
	e.text()
	return e.origVal
}

func (e *entity) readText() string {
	var plain, html []string
	for _, p := range e.parts {
		switch p.mediaType {
		case "text/plain", "text/enriched", "text":
			plain = append(plain, string(p.body))
		case "text/html":
			html = append(html, htmlToText(string(p.body)))
		}
	}
	if len(plain) > 0 && strings.TrimSpace(strings.Join(plain, "")) != "" {
		return strings.Join(plain, "\n")
	}
	return strings.Join(html, "\n")
}

// headerText returns a header field with RFC 2047 encoded words decoded,
// or the raw value when decoding fails.
func headerText(h message.Header, key string) string {
	v, err := h.Text(key)
	if err != nil {
		v = h.Get(key)
	}
	return strings.TrimSpace(v)
}

// headerAddress returns the first address of an address header field, or
// the address found in its text when the field does not parse.
func headerAddress(h message.Header, key string) string {
	v := h.Get(key)
	if v == "" {
		return ""
	}
	if a, err := mail.ParseAddress(v); err == nil && a.Address != "" {
		return a.Address
	}
	if addrs := findAddresses(v); len(addrs) > 0 {
		return addrs[0].addr
	}
	return strings.TrimSpace(v)
}

// headerAddresses returns every address of an address header field.
func headerAddresses(h message.Header, key string) []string {
	var out []string
	for _, v := range h.Values(key) {
		for _, a := range findAddresses(v) {
			out = append(out, a.addr)
		}
	}
	return out
}
