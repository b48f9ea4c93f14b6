package tracking

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"

	"corriere/core/message"
)

func testLinker() *linker {
	return &linker{signer: signer{key: []byte("0123456789abcdef0123456789abcdef")}, base: "https://t.shop.test",
		claims: claims{Host: "t.shop.test", Tenant: "shop", MsgID: "m1", Rcpt: "a@b.test"},
		keep:   map[string]bool{"https://shop.test/unsubscribe": true}, clicks: true, opens: true}
}

func parse(t *testing.T, raw string) *message.Message {
	t.Helper()
	h, body, err := message.Parse([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return &message.Message{Header: h, Body: body}
}

// TestRewriteLinks: which links are rewritten, in which parts and
// encodings, and what is left byte for byte.
func TestRewriteLinks(t *testing.T) {
	const html = `<html><body><p><a href="https://shop.test/a?x=1&amp;y=2">A</a> <A class=x HREF='http://shop.test/b'>B</A>
<a href="mailto:help@shop.test">mail</a> <a href="tel:+390212345">call</a> <a href="https://shop.test/unsubscribe">stop</a>
<a href="#top">top</a> <a data-href="https://shop.test/c" href="/relative">rel</a></p></BODY></html>`
	qp := func(s string) string {
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"single part", "Content-Type: text/html; charset=utf-8\n\n" + html + "\n"},
		{"quoted-printable in multipart/alternative", "Content-Type: multipart/alternative; boundary=\"b1\"\n\npreamble\n--b1\nContent-Type: text/plain\n\nhttps://shop.test/a in plain text stays\n--b1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			strings.ReplaceAll(qp(html), "\r\n", "\n") + "\n--b1--\nepilogue\n"},
		{"nested multipart, base64", "Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n" +
			string(encodeBase64([]byte(html))) + "--inner--\n--outer\nContent-Type: text/html\nContent-Disposition: attachment; filename=a.html\n\n<a href=\"https://shop.test/attached\">x</a>\n--outer--\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := parse(t, tt.raw)
			l := testLinker()
			rewriteMessage(m, l)
			if l.rewritten != 2 || l.pixels != 1 {
				t.Fatalf("rewrote %d links and %d pixels, want 2 and 1:\n%s", l.rewritten, l.pixels, m.Body)
			}
			doc := decodedHTML(t, m)
			for _, want := range []string{
				`href="https://t.shop.test/c/`, "href=\"mailto:help@shop.test\"", "href=\"tel:+390212345\"",
				"href=\"https://shop.test/unsubscribe\"", `href="#top"`, `href="/relative"`, `<img src="https://t.shop.test/o/`,
			} {
				if !strings.Contains(doc, want) {
					t.Errorf("rewritten HTML lacks %q:\n%s", want, doc)
				}
			}
			if strings.Contains(doc, `"https://shop.test/a`) || strings.Contains(doc, `'http://shop.test/b'`) {
				t.Errorf("a tracked link is left:\n%s", doc)
			}
			if i, j := strings.Index(doc, "<img"), strings.Index(doc, "</BODY>"); i < 0 || i > j {
				t.Errorf("pixel not before </body>:\n%s", doc)
			}
			body := string(m.Body)
			for _, kept := range []string{"preamble", "epilogue", "https://shop.test/a in plain text stays", `<a href="https://shop.test/attached">`} {
				if strings.Contains(tt.raw, kept) && !strings.Contains(body, kept) {
					t.Errorf("%q was changed:\n%s", kept, body)
				}
			}
			// The click URLs carry the original links, decoded.
			s := testLinker().signer
			var got []string
			for _, part := range strings.Split(doc, "/c/")[1:] {
				c, err := s.verify(part[:strings.IndexByte(part, '"')])
				if err != nil {
					t.Fatalf("token: %v", err)
				}
				got = append(got, c.URL)
			}
			if strings.Join(got, " ") != "https://shop.test/a?x=1&y=2 http://shop.test/b" {
				t.Errorf("tracked links %q", got)
			}
		})
	}
}

// decodedHTML returns the first non-attachment HTML part of m, decoded.
func decodedHTML(t *testing.T, m *message.Message) string {
	t.Helper()
	var found string
	var walk func(h interface{ Get(string) string }, body []byte)
	walk = func(h interface{ Get(string) string }, body []byte) {
		ct := h.Get("Content-Type")
		switch {
		case found != "" || strings.Contains(h.Get("Content-Disposition"), "attachment"):
		case strings.HasPrefix(ct, "multipart/"):
			b := ct[strings.Index(ct, "boundary=")+len("boundary="):]
			b = strings.Trim(b, `"`)
			for _, r := range partRanges(body, b) {
				ph, pb, err := message.Parse(body[r[0]:r[1]])
				if err != nil {
					t.Fatal(err)
				}
				walk(&ph, pb)
			}
		case strings.HasPrefix(ct, "text/html"):
			switch h.Get("Content-Transfer-Encoding") {
			case "quoted-printable":
				d, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
				if err != nil {
					t.Fatal(err)
				}
				found = string(d)
			case "base64":
				d, ok := base64Decode(body)
				if !ok {
					t.Fatal("bad base64")
				}
				found = string(d)
			default:
				found = string(body)
			}
		}
	}
	walk(&m.Header, m.Body)
	return found
}

func base64Decode(b []byte) ([]byte, bool) {
	d, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(b), nil)))
	return d, err == nil
}

// TestLongLinesBecomeQuotedPrintable: an 8bit HTML part whose rewritten
// lines would outgrow SMTP's 998 octets is re-encoded.
func TestLongLinesBecomeQuotedPrintable(t *testing.T) {
	line := `<a href="https://shop.test/1">1</a>`
	m := parse(t, "Content-Type: text/html\n\n"+strings.Repeat(line, 20)+"\n")
	rewriteMessage(m, testLinker())
	if got := m.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q", got)
	}
	if longLine(m.Body) {
		t.Error("a line is still over 998 octets")
	}
}

// TestNothingToTrack: plain text, and HTML without links when opens are
// off, are left alone.
func TestNothingToTrack(t *testing.T) {
	for _, raw := range []string{"Subject: x\n\nhttps://shop.test/a\n", "Content-Type: text/plain\n\n<a href=\"https://shop.test/a\">\n"} {
		m := parse(t, raw)
		before := string(m.Body)
		rewriteMessage(m, testLinker())
		if string(m.Body) != before {
			t.Errorf("changed %q into %q", before, m.Body)
		}
	}
	m := parse(t, "Content-Type: text/html\n\n<p>no links</p>\n")
	l := testLinker()
	l.opens = false
	rewriteMessage(m, l)
	if string(m.Body) != "<p>no links</p>\r\n" {
		t.Errorf("changed into %q", m.Body)
	}
}

// TestTokens: a token verifies; any change to it does not.
func TestTokens(t *testing.T) {
	s := signer{key: []byte("0123456789abcdef")}
	c := claims{Kind: kindClick, Host: "t.shop.test", Tenant: "shop", MsgID: "m1", URL: "https://shop.test/a"}
	tok := s.token(c)
	if got, err := s.verify(tok); err != nil || got != c {
		t.Fatalf("verify = %+v, %v", got, err)
	}
	other := signer{key: []byte("fedcba9876543210")}
	forged := c
	forged.URL = "https://evil.test/"
	payload, _, _ := strings.Cut(tok, ".")
	_, sig, _ := strings.Cut(s.token(forged), ".")
	for name, bad := range map[string]string{
		"empty": "", "no signature": payload, "flipped": tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:],
		"other key": other.token(c), "signature of other claims": payload + "." + sig,
		"other payload": s.token(forged)[:strings.IndexByte(s.token(forged), '.')] + tok[strings.IndexByte(tok, '.'):],
	} {
		if _, err := s.verify(bad); err == nil {
			t.Errorf("%s: %q verified", name, bad)
		}
	}
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func FuzzRewrite(f *testing.F) {
	f.Add("text/html", "<a href=\"https://x.test/\">x</a></body>")
	f.Add("multipart/alternative; boundary=b", "--b\r\nContent-Type: text/html\r\n\r\n<a href=https://x.test>\r\n--b--\r\n")
	f.Fuzz(func(t *testing.T, ct, body string) {
		m := &message.Message{Body: []byte(body)}
		m.Header.Set("Content-Type", ct)
		rewriteMessage(m, testLinker())
	})
}
