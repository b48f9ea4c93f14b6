package tracking

import (
	"strings"
	"testing"

	"corriere/core/message"
)

// BenchmarkRewrite measures the ingest stage on a 60 KB newsletter with 40
// links in a quoted-printable HTML part.
func BenchmarkRewrite(b *testing.B) {
	var html strings.Builder
	html.WriteString("<html><body>")
	for i := range 40 {
		html.WriteString(`<p>` + strings.Repeat("Offerta speciale di primavera. ", 40) + `<a href="https://shop.test/p/` + string(rune('a'+i%26)) + `?utm_source=news">vedi</a></p>` + "\n")
	}
	html.WriteString("</body></html>\n")
	raw := "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		string(encodeQP([]byte(html.String()))) + "--b--\r\n"
	h, body, err := message.Parse([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := &message.Message{Header: h.Copy(), Body: body}
		l := testLinker()
		rewriteMessage(m, l)
		if l.rewritten != 40 {
			b.Fatalf("rewrote %d links", l.rewritten)
		}
	}
}
