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

// anchorHref finds the href attribute of each <a> element: group 1 is
// everything before the value, group 2 the value with its quotes.
var anchorHref = regexp.MustCompile(`(?is)(<a\s(?:[^>]*?\s)?href\s*=\s*)("[^"]*"|'[^']*'|[^\s>"']+)`)

// bodyEnd finds the last </body>.
var bodyEnd = regexp.MustCompile(`(?i)</body\s*>`)

// rewriteHTML replaces the http and https links of doc with tracked ones
// and adds the open pixel, as l wants, and reports whether it changed doc.
func rewriteHTML(doc []byte, l *linker) ([]byte, bool) {
	changed := false
	if l.clicks {
		doc = anchorHref.ReplaceAllFunc(doc, func(m []byte) []byte {
			sub := anchorHref.FindSubmatch(m)
			value := string(sub[2])
			if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') {
				value = value[1 : len(value)-1]
			}
			link := strings.TrimSpace(html.UnescapeString(value))
			if !trackable(link) || l.keep[link] {
				return m
			}
			l.rewritten++
			changed = true
			return append(append(append([]byte{}, sub[1]...), '"'), html.EscapeString(l.clickURL(link))+`"`...)
		})
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
