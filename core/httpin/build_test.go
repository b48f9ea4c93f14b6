package httpin

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

// composeOne composes c for one recipient with values.
func composeOne(t *testing.T, c Content, values map[string]any) []byte {
	t.Helper()
	req := &Request{Sender: "a@sender.test", Recipients: []Recipient{{Email: "r@d.test", Substitutions: values}}, Content: c}
	if err := req.check(10); err != nil {
		t.Fatal(err)
	}
	comp, err := newComposer(&req.Content, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := comp.compose(&req.Recipients[0], "recipients[0]")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestComposeMIME: text, HTML and an attachment become multipart/mixed
// around multipart/alternative, every line ends in CRLF, and each part
// decodes back to what was given, substitutions rendered.
func TestComposeMIME(t *testing.T) {
	file := []byte(strings.Repeat("binary\x00\xff", 40))
	raw := composeOne(t, Content{
		From: "Shop <shop@sender.test>", Subject: "Ciao {{.name}} ✓", Text: "Hello {{.name}}\nline two", HTML: "<b>{{.name}}</b>",
		Headers:     map[string]string{"X-Campaign": "spring-{{.n}}"},
		Attachments: []Attachment{{Filename: "a.bin", Data: base64.StdEncoding.EncodeToString(file)}},
	}, map[string]any{"name": "<Ada>", "n": 3})
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("a line does not end in CRLF:\n%q", raw)
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if subject != "Ciao <Ada> ✓" || m.Header.Get("To") != "<r@d.test>" || m.Header.Get("X-Campaign") != "spring-3" {
		t.Errorf("header: Subject %q, To %q, X-Campaign %q", subject, m.Header.Get("To"), m.Header.Get("X-Campaign"))
	}
	typ, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if typ != "multipart/mixed" {
		t.Fatalf("Content-Type %q", typ)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	alt, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	atyp, aparams, _ := mime.ParseMediaType(alt.Header.Get("Content-Type"))
	if atyp != "multipart/alternative" {
		t.Fatalf("first part %q", atyp)
	}
	ar := multipart.NewReader(alt, aparams["boundary"])
	var bodies []string
	for {
		p, err := ar.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		bodies = append(bodies, string(b))
	}
	if len(bodies) != 2 || bodies[0] != "Hello <Ada>\r\nline two\r\n" || bodies[1] != "<b>&lt;Ada&gt;</b>\r\n" {
		t.Errorf("text and HTML parts: %q (the HTML one escaped)", bodies)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, att))
	if att.FileName() != "a.bin" || !bytes.Equal(got, file) {
		t.Errorf("attachment %q: %d bytes, want %d", att.FileName(), len(got), len(file))
	}
}

// TestComposeKeepsSubstitutionsInTheirField: a value with line breaks
// cannot add a header field, in the subject or in a header of headers.
func TestComposeKeepsSubstitutionsInTheirField(t *testing.T) {
	raw := composeOne(t, Content{From: "shop@sender.test", Subject: "{{.s}}", Text: "x", Headers: map[string]string{"X-Tag": "{{.s}}"}},
		map[string]any{"s": "hi\r\nBcc: victim@example.com\nX-Evil: 1"})
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Bcc") != "" || m.Header.Get("X-Evil") != "" {
		t.Fatalf("a substitution added header fields:\n%s", raw)
	}
}

// TestComposeRaw: a raw message is rendered and its bare LFs become CRLF.
func TestComposeRaw(t *testing.T) {
	raw := composeOne(t, Content{Raw: "From: shop@sender.test\nSubject: {{.s}}\n\nbody\n"}, map[string]any{"s": "x"})
	if want := "From: shop@sender.test\r\nSubject: x\r\n\r\nbody\r\n"; string(raw) != want {
		t.Errorf("got %q, want %q", raw, want)
	}
}

// TestTemplatesCannotCallFunctions: every way to reach a function or
// another template is refused when the request is read.
func TestTemplatesCannotCallFunctions(t *testing.T) {
	for _, text := range []string{
		`{{printf "%v" .x}}`, `{{.x | len}}`, `{{call .f}}`, `{{if eq .x 1}}y{{end}}`, `{{range index .x 1}}{{end}}`,
		`{{define "t"}}x{{end}}`, `{{template "x"}}`, `{{with $v := html .x}}{{end}}`, `{{block "b" .}}x{{end}}`, `{{range 1000000000}}x{{end}}`,
	} {
		for _, html := range []bool{false, true} {
			if _, err := compile("content.text", text, html); err == nil {
				t.Errorf("compile(%q, html=%v) accepted", text, html)
			}
		}
	}
	for _, text := range []string{`{{.x}}`, `{{if .x}}a{{else}}b{{end}}`, `{{range .list}}{{.}}{{end}}`, `{{with .x}}{{.}}{{end}}`, `{{/* note */}}`, `{{$v := .x}}{{$v}}`} {
		if _, err := compile("content.text", text, false); err != nil {
			t.Errorf("compile(%q): %v", text, err)
		}
	}
}

// TestRenderingIsBounded: a template that ranges over a list inside a
// range over the same list stops at the budget instead of taking memory.
func TestRenderingIsBounded(t *testing.T) {
	list := make([]any, 1000)
	comp, err := newComposer(&Content{From: "a@b.c", Text: "{{range .l}}{{range $.l}}{{range $.l}}x{{end}}{{end}}{{end}}"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.compose(&Recipient{Email: "r@d.test", Substitutions: map[string]any{"l": list}}, "recipients[0]"); !errors.Is(err, errRenderBudget) {
		t.Fatalf("compose: %v, want errRenderBudget", err)
	}
}

// FuzzDecodeRequest: no body makes decoding or composing panic, and every
// refusal is a *FieldError.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(`{"sender":"a@b.c","recipients":[{"email":"x@y.z","substitutions":{"n":1}}],"content":{"from":"a@b.c","subject":"{{.n}}","text":"t"}}`)
	f.Add(`{"sender":"a@b.c","recipients":[{"email":"x@y.z"}],"content":{"raw":"Subject: {{if .n}}x{{end}}\n\nb"}}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeRequest(strings.NewReader(body), 10)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			return
		}
		comp, err := newComposer(&req.Content, 1<<20)
		if err != nil {
			return
		}
		for i := range req.Recipients {
			comp.compose(&req.Recipients[i], "recipients")
		}
	})
}
