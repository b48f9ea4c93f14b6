package bounce

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Limits that bound the work Parse does on hostile or huge input. Bounces
// worth reading are small; anything past these limits is ignored, not
// rejected.
const (
	maxInput     = 8 << 20 // bytes of the raw message looked at
	maxPartBytes = 1 << 20 // bytes decoded from one MIME part
	maxParts     = 64      // leaf parts collected
	maxDepth     = 6       // multipart nesting followed
	maxHeader    = 256     // header fields kept per header block
)

// part is one leaf of the MIME tree, decoded.
type part struct {
	mediaType string // lower-case, for example "text/plain"
	header    message.Header
	// body is the transfer-decoded content; for text/* parts it is also
	// converted to UTF-8 (invalid sequences replaced).
	body []byte
}

// entity is a parsed message: its header and its leaf parts in order.
type entity struct {
	header message.Header
	parts  []part

	// The human-readable text, split where the returned message begins;
	// see text.
	textDone                 bool
	textVal, errVal, origVal string
}

// readEntity parses raw leniently. It never fails: a header line it cannot
// read is skipped, a multipart without its closing boundary ends where the
// data ends, and an unknown transfer encoding or charset leaves the bytes as
// they are.
func readEntity(raw []byte) *entity {
	if len(raw) > maxInput {
		raw = raw[:maxInput]
	}
	raw = normalizeNewlines(raw)
	h, body := splitHeader(raw)
	e := &entity{header: h}
	w := walker{e: e}
	w.walk(h, body, 0)
	return e
}

type walker struct {
	e *entity
}

func (w *walker) walk(h message.Header, body []byte, depth int) {
	if len(w.e.parts) >= maxParts {
		return
	}
	mt, params, _ := h.ContentType()
	if f := strings.FieldsFunc(strings.ToLower(mt), func(r rune) bool { return r == ' ' || r == '\t' || r == ';' }); len(f) > 0 {
		mt = f[0]
	} else {
		mt = "text/plain"
	}
	if mt == "text/plain" && params == nil {
		// A Content-Type that does not parse ("text/plain charset=x")
		// still names its charset.
		if _, p, err := mime.ParseMediaType(strings.Replace(h.Get("Content-Type"), " ", ";", 1)); err == nil {
			params = p
		}
	}
	if depth == 0 && h.Get("Content-Type") == "" {
		// MIME headers lost on the way: a body made of delimited parts
		// is still a multipart.
		if b := guessBoundary(body); b != "" && bytes.Count(body, []byte("\n--"+b)) >= 2 && shortPreamble(body, b) {
			mt, params = "multipart/mixed", map[string]string{"boundary": b}
		}
	}
	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth {
		boundary := params["boundary"]
		if boundary == "" {
			boundary = guessBoundary(body)
		}
		if boundary != "" {
			subs := splitMultipart(body, boundary)
			if len(subs) > 0 {
				for _, sub := range subs {
					sh, sb := splitHeader(sub)
					w.walk(sh, sb, depth+1)
				}
				return
			}
		}
		// A multipart without usable parts: read it as text, which is
		// what a broken bounce usually is.
		mt = "text/plain"
	}
	p := part{mediaType: mt, header: h, body: decodeBody(h, mt, body)}
	if depth > 0 && isMessageHeader(h) && !strings.HasPrefix(mt, "message/") {
		// A returned message pasted in as a part of its own, without
		// its message/rfc822 label.
		p.mediaType = "message/rfc822"
		p.body = body
	}
	w.e.parts = append(w.e.parts, p)
}

// isMessageHeader reports whether a part header is in fact the header of a
// whole message.
func isMessageHeader(h message.Header) bool {
	return h.Has("Received") || h.Has("Return-Path") || h.Has("Message-Id") || (h.Has("From") && h.Has("Date"))
}

// decodeBody undoes the transfer encoding and, for text, the charset.
func decodeBody(h message.Header, mediaType string, body []byte) []byte {
	if len(body) > maxPartBytes*2 {
		body = body[:maxPartBytes*2]
	}
	decodeText := strings.HasPrefix(mediaType, "text/")
	// message.New converts the charset of text parts only. Errors about
	// unknown encodings or charsets still come with a readable entity.
	ent, err := message.New(h, bytes.NewReader(body))
	var out []byte
	if ent != nil {
		out, _ = io.ReadAll(io.LimitReader(ent.Body, maxPartBytes))
	}
	if ent == nil || (err != nil && len(out) == 0) {
		out = body
	}
	if !decodeText {
		return out
	}
	if message.IsUnknownCharset(err) || !utf8.Valid(out) {
		out = fallbackCharset(out)
	}
	return out
}

// fallbackCharset turns undeclared or mis-declared text into UTF-8: raw
// ISO-2022-JP (common in Japanese carrier bounces) is decoded, anything else
// that is not UTF-8 is read as Latin-1, which never fails.
func fallbackCharset(b []byte) []byte {
	if bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")) {
		if r, err := charset.Reader("iso-2022-jp", bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(r, maxPartBytes)); err == nil && utf8.Valid(out) {
				return out
			}
		}
	}
	if utf8.Valid(b) {
		return b
	}
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/4)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			sb.WriteRune(rune(b[0]))
			b = b[1:]
			continue
		}
		sb.WriteRune(r)
		b = b[size:]
	}
	return []byte(sb.String())
}

// normalizeNewlines turns CRLF and lone CR into LF, so that every later
// step deals with one line ending.
func normalizeNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			// "\r\r\n", as written by software that added a CR to a
			// CRLF, is one line break too.
			j := i
			for j < len(b) && b[j] == '\r' {
				j++
			}
			if j < len(b) && b[j] == '\n' {
				i = j - 1
				continue
			}
			i = j - 1
			c = '\n'
		}
		out = append(out, c)
	}
	return out
}

// splitHeader reads a header block leniently: lines without a colon are
// skipped, a leading mbox "From " line is ignored, and the header ends at the
// first empty line (or at the end of the data).
func splitHeader(b []byte) (message.Header, []byte) {
	var h textproto.Header
	rest := b
	if bytes.HasPrefix(rest, []byte("From ")) {
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		}
	}
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" && h.Len() < maxHeader {
			h.Add(key, strings.TrimSpace(val.String()))
		}
		key = ""
		val.Reset()
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" && val.Len() < 64<<10 {
				val.WriteByte(' ')
				val.Write(bytes.TrimSpace(line))
			}
			continue
		}
		flush()
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) {
			if key == "" && h.Len() == 0 && !looksLikeHeaderStart(line) {
				// Not a header at all: the whole block is body.
				return message.Header{Header: h}, b
			}
			continue
		}
		key = string(bytes.TrimSpace(line[:colon]))
		val.Write(line[colon+1:])
	}
	flush()
	return message.Header{Header: h}, rest
}

func looksLikeHeaderStart(line []byte) bool {
	return bytes.HasPrefix(line, []byte("From "))
}

func validFieldName(b []byte) bool {
	b = bytes.TrimRight(b, " \t")
	if len(b) == 0 || len(b) > 76 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// splitMultipart returns the bodies (header included) of the parts of a
// multipart body. A missing closing delimiter ends the last part at the end
// of the data.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	pos := 0
	for pos <= len(body) {
		end := bytes.IndexByte(body[pos:], '\n')
		var line []byte
		next := len(body) + 1
		if end < 0 {
			line = body[pos:]
		} else {
			line = body[pos : pos+end]
			next = pos + end + 1
		}
		if bytes.HasPrefix(line, delim) {
			tail := bytes.TrimRight(line[len(delim):], " \t")
			closing := bytes.HasPrefix(tail, []byte("--"))
			if closing || len(tail) == 0 {
				if start >= 0 {
					parts = append(parts, trimPartEnd(body[start:pos]))
				}
				if closing {
					return parts
				}
				start = next
				if len(parts) >= maxParts {
					return parts
				}
			}
		}
		pos = next
	}
	if start >= 0 && start <= len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// trimPartEnd removes the line break that belongs to the next delimiter.
func trimPartEnd(b []byte) []byte {
	return bytes.TrimSuffix(b, []byte("\n"))
}

// shortPreamble reports whether the first delimiter of boundary comes
// after no more than a line or two of text, as in a real multipart (and
// unlike a bounce quoting a multipart message further down).
func shortPreamble(body []byte, boundary string) bool {
	i := bytes.Index(body, []byte("--"+boundary))
	if i < 0 {
		return false
	}
	lines := 0
	for _, l := range bytes.Split(body[:i], []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines++
		}
	}
	return lines <= 3
}

// guessBoundary finds the boundary of a multipart whose Content-Type lost
// its parameter: the first line that looks like "--something".
func guessBoundary(body []byte) string {
	for _, line := range bytes.SplitN(body, []byte("\n"), 50) {
		if bytes.HasPrefix(line, []byte("--")) && len(line) > 4 && !bytes.ContainsAny(line, " \t") &&
			bytes.IndexFunc(line, func(r rune) bool { return r < 128 && (isDigit(byte(r)) || isLetter(byte(r))) }) >= 0 {
			return string(bytes.TrimSuffix(line[2:], []byte("--")))
		}
	}
	return ""
}
