package tracking

import (
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"

	"corriere/core/message"
)

// linker makes the tracked URLs of one message.
type linker struct {
	signer signer
	base   string
	// claims are the message's; each URL adds its kind and link.
	claims claims
	// keep are links never rewritten: those of List-Unsubscribe.
	keep          map[string]bool
	clicks, opens bool
	// rewritten counts the links rewritten, pixels the pixels added.
	rewritten, pixels int
}

// clickURL returns the tracked URL of link.
func (l *linker) clickURL(link string) string {
	c := l.claims
	c.Kind, c.URL = kindClick, link
	return l.base + "/c/" + l.signer.token(c)
}

// pixelURL returns the URL of the open pixel.
func (l *linker) pixelURL() string {
	c := l.claims
	c.Kind = kindOpen
	return l.base + "/o/" + l.signer.token(c)
}

// unsubscribeLinks returns the URLs of the List-Unsubscribe fields of h
// ("<https://...>, <mailto:...>").
func unsubscribeLinks(h *textproto.Header) map[string]bool {
	keep := map[string]bool{}
	for _, v := range h.Values("List-Unsubscribe") {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if strings.HasPrefix(part, "<") && strings.HasSuffix(part, ">") {
				keep[strings.TrimSpace(part[1:len(part)-1])] = true
			}
		}
	}
	return keep
}

// maxDepth bounds the nesting of multiparts the rewriter walks into.
const maxDepth = 16

// rewriteMessage rewrites the HTML parts of m with l.
func rewriteMessage(m *message.Message, l *linker) {
	if body, ok := rewriteEntity(&m.Header, m.Body, l, 0); ok {
		m.Body = body
	}
}

// rewriteEntity rewrites an entity (the message, or one body part) with
// header h and body body, and returns the new body and true when it
// changed anything; it may change h (the transfer encoding).
func rewriteEntity(h *textproto.Header, body []byte, l *linker, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return nil, false
	}
	if d, _, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && d == "attachment" {
		return nil, false
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return nil, false // text/plain
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, false
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		return rewriteMultipart(body, params["boundary"], l, depth)
	case mt == "text/html":
		cs := strings.ToLower(params["charset"])
		if strings.HasPrefix(cs, "utf-16") || strings.HasPrefix(cs, "utf-32") {
			return nil, false // not ASCII-compatible: links cannot be found bytewise
		}
		return rewriteHTMLPart(h, body, l)
	}
	return nil, false
}

// rewriteMultipart rewrites the parts of a multipart body, leaving every
// byte of the parts it does not change, and of the delimiters, as it was.
func rewriteMultipart(body []byte, boundary string, l *linker, depth int) ([]byte, bool) {
	ranges := partRanges(body, boundary)
	if ranges == nil {
		return nil, false
	}
	var out bytes.Buffer
	last, changed := 0, false
	for _, r := range ranges {
		part := body[r[0]:r[1]]
		h, pbody, err := message.Parse(part)
		if err != nil {
			continue
		}
		nb, ok := rewriteEntity(&h, pbody, l, depth+1)
		if !ok {
			continue
		}
		out.Write(body[last:r[0]])
		_ = textproto.WriteHeader(&out, h) // writes to a bytes.Buffer do not fail
		out.Write(nb)
		last, changed = r[1], true
	}
	if !changed {
		return nil, false
	}
	out.Write(body[last:])
	return out.Bytes(), true
}

// partRanges returns the [start, end) byte ranges of the parts of a
// multipart body (RFC 2046 section 5.1.1: each part ends before the line
// break that precedes the next delimiter), or nil when the body has no
// closing delimiter.
func partRanges(body []byte, boundary string) [][2]int {
	delim := []byte("--" + boundary)
	var ranges [][2]int
	start := -1
	for pos := 0; pos < len(body); {
		end := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		if end >= 0 {
			next = pos + end + 1
		}
		line := bytes.TrimRight(body[pos:next], "\r\n")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			closing := bytes.HasPrefix(rest, []byte("--"))
			if closing || len(bytes.TrimRight(rest, " \t")) == 0 {
				if start >= 0 {
					stop := pos
					if stop > start && body[stop-1] == '\n' {
						stop--
						if stop > start && body[stop-1] == '\r' {
							stop--
						}
					}
					ranges = append(ranges, [2]int{start, stop})
				}
				if closing {
					return ranges
				}
				start = next
			}
		}
		pos = next
	}
	return nil
}

// rewriteHTMLPart decodes an HTML part, rewrites it, and encodes it again
// in its transfer encoding; quoted-printable when a line would outgrow
// what SMTP carries.
func rewriteHTMLPart(h *textproto.Header, body []byte, l *linker) ([]byte, bool) {
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	var doc []byte
	switch cte {
	case "quoted-printable":
		d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, false
		}
		doc = d
	case "base64":
		d, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil)))
		if err != nil {
			return nil, false
		}
		doc = d
	case "", "7bit", "8bit", "binary":
		doc = body
	default:
		return nil, false
	}
	out, ok := rewriteHTML(doc, l)
	if !ok {
		return nil, false
	}
	switch {
	case cte == "base64":
		return encodeBase64(out), true
	case cte == "quoted-printable" || longLine(out):
		h.Set("Content-Transfer-Encoding", "quoted-printable")
		return encodeQP(out), true
	}
	return out, true
}

// bodyEnd finds the last </body>.
var bodyEnd = regexp.MustCompile(`(?i)</body\s*>`)

// rewriteHTML replaces the http and https links of doc with tracked ones
// and adds the open pixel, as l wants, and reports whether it changed doc.
func rewriteHTML(doc []byte, l *linker) ([]byte, bool) {
	changed := false
	if l.clicks {
		before := l.rewritten
		doc = rewriteAnchors(doc, l)
		changed = l.rewritten > before
	}
	if l.opens {
		img := []byte(`<img src="` + html.EscapeString(l.pixelURL()) + `" width="1" height="1" alt="" style="border:0;width:1px;height:1px">`)
		if locs := bodyEnd.FindAllIndex(doc, -1); len(locs) > 0 {
			at := locs[len(locs)-1][0]
			doc = append(append(append([]byte{}, doc[:at]...), img...), doc[at:]...)
		} else {
			doc = append(append([]byte{}, doc...), img...)
		}
		l.pixels++
		changed = true
	}
	return doc, changed
}

// rewriteAnchors replaces the value of the href attribute of each <a>
// element whose link is trackable. It scans the markup by hand: a regular
// expression over a whole newsletter costs ten times as much.
func rewriteAnchors(doc []byte, l *linker) []byte {
	var out []byte
	last := 0
	for pos := 0; pos < len(doc); {
		lt := bytes.IndexByte(doc[pos:], '<')
		if lt < 0 {
			break
		}
		tag := pos + lt
		pos = tag + 1
		if tag+2 >= len(doc) || (doc[tag+1] != 'a' && doc[tag+1] != 'A') || !isSpace(doc[tag+2]) {
			continue
		}
		start, end, ok := hrefValue(doc, tag+2)
		if !ok {
			continue
		}
		pos = end
		value := doc[start:end]
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') {
			value = value[1 : len(value)-1]
		}
		link := strings.TrimSpace(html.UnescapeString(string(value)))
		if !trackable(link) || l.keep[link] {
			continue
		}
		out = append(out, doc[last:start]...)
		out = append(out, '"')
		out = append(out, html.EscapeString(l.clickURL(link))...)
		out = append(out, '"')
		last = end
		l.rewritten++
	}
	if out == nil {
		return doc
	}
	return append(out, doc[last:]...)
}

// hrefValue finds the href attribute among the attributes that start at
// i, up to the end of the tag, and returns the bounds of its value,
// quotes included.
func hrefValue(doc []byte, i int) (start, end int, ok bool) {
	for i < len(doc) {
		for i < len(doc) && (isSpace(doc[i]) || doc[i] == '/') {
			i++
		}
		if i >= len(doc) || doc[i] == '>' {
			return 0, 0, false
		}
		name := i
		for i < len(doc) && !isSpace(doc[i]) && doc[i] != '=' && doc[i] != '>' && doc[i] != '/' {
			i++
		}
		isHref := strings.EqualFold(string(doc[name:i]), "href")
		for i < len(doc) && isSpace(doc[i]) {
			i++
		}
		if i >= len(doc) || doc[i] != '=' {
			continue // an attribute without a value
		}
		i++
		for i < len(doc) && isSpace(doc[i]) {
			i++
		}
		if i >= len(doc) {
			return 0, 0, false
		}
		vstart := i
		if q := doc[i]; q == '"' || q == '\'' {
			e := bytes.IndexByte(doc[i+1:], q)
			if e < 0 {
				return 0, 0, false
			}
			i += e + 2
		} else {
			for i < len(doc) && !isSpace(doc[i]) && doc[i] != '>' {
				i++
			}
		}
		if isHref {
			return vstart, i, i > vstart
		}
	}
	return 0, 0, false
}

// isSpace reports whether c is HTML's ASCII whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// trackable reports whether link is an absolute http or https URL; other
// schemes (mailto:, tel:, sms:...), anchors and relative links stay.
func trackable(link string) bool {
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return s == "http" || s == "https"
}

// longLine reports whether doc has a line longer than the 998 octets SMTP
// carries.
func longLine(doc []byte) bool {
	for len(doc) > 0 {
		i := bytes.IndexByte(doc, '\n')
		if i < 0 {
			return len(doc) > 998
		}
		if len(bytes.TrimRight(doc[:i], "\r")) > 998 {
			return true
		}
		doc = doc[i+1:]
	}
	return false
}

// encodeQP encodes doc as quoted-printable with CRLF line breaks.
func encodeQP(doc []byte) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write(doc) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// encodeBase64 encodes doc as base64 in lines of 76 characters.
func encodeBase64(doc []byte) []byte {
	s := base64.StdEncoding.EncodeToString(doc)
	var b bytes.Buffer
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteString("\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	b.WriteString("\r\n")
	return b.Bytes()
}
