package httpin

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Substitutions are templates of Go's text/template (html/template for the
// HTML part, which escapes the values it inserts) limited to what a mail
// merge needs: {{.field}}, if, else, range and with over the recipient's
// values. Calls of functions (printf, call, index...) and template
// definitions are refused when the request is read, so a template can
// only read the values it is given. A value the template names and the
// recipient lacks is an error, not an empty string: a mail that says
// "Dear ," is worse than none.

// executor renders one template field for a recipient.
type executor interface {
	Execute(w io.Writer, data any) error
}

// field is one text field of the content: a literal or a template.
type field struct {
	name string
	text string
	tmpl executor
}

// compile parses text as the template of field name, or keeps it literal
// when it has no action.
func compile(name, text string, html bool) (*field, error) {
	f := &field{name: name, text: text}
	if !strings.Contains(text, "{{") {
		return f, nil
	}
	var (
		tree      *parse.Tree
		templates int
	)
	if html {
		t, err := htmltemplate.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fieldErr(name, "template: %v", cleanTemplateErr(err))
		}
		tree, templates, f.tmpl = t.Tree, len(t.Templates()), t
	} else {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fieldErr(name, "template: %v", cleanTemplateErr(err))
		}
		tree, templates, f.tmpl = t.Tree, len(t.Templates()), t
	}
	if templates > 1 {
		return nil, fieldErr(name, "template: define and block are not allowed")
	}
	if bad := forbidden(tree.Root); bad != "" {
		return nil, fieldErr(name, "template: %s is not allowed; only substitutions like {{.name}}, if, range and with", bad)
	}
	return f, nil
}

// cleanTemplateErr drops the template's name, which the field already
// gives, from a parse error.
func cleanTemplateErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
		return msg[i+2:]
	}
	return msg
}

// forbidden returns the first function call or template invocation under
// n, or "".
func forbidden(n parse.Node) string {
	switch n := n.(type) {
	case nil:
		return ""
	case *parse.IdentifierNode:
		return "the function " + n.Ident
	case *parse.TemplateNode:
		return "{{template}}"
	case *parse.NumberNode:
		// Only functions take numbers, but range takes one alone: {{range
		// 1000000000}} would render a billion times.
		return "the number " + n.Text
	case *parse.ListNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Nodes {
			if bad := forbidden(c); bad != "" {
				return bad
			}
		}
	case *parse.ActionNode:
		return forbidden(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Cmds {
			if bad := forbidden(c); bad != "" {
				return bad
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if bad := forbidden(a); bad != "" {
				return bad
			}
		}
	case *parse.ChainNode:
		return forbidden(n.Node)
	case *parse.IfNode:
		return forbiddenBranch(&n.BranchNode)
	case *parse.RangeNode:
		return forbiddenBranch(&n.BranchNode)
	case *parse.WithNode:
		return forbiddenBranch(&n.BranchNode)
	}
	return ""
}

func forbiddenBranch(b *parse.BranchNode) string {
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if bad := forbidden(n); bad != "" {
			return bad
		}
	}
	return ""
}

// errRenderBudget ends a rendering that outgrew its budget.
var errRenderBudget = errors.New("the rendered messages are larger than the limit")

// budgetWriter is a buffer that refuses to grow beyond its budget, which
// all the renderings of a request share: a template that ranges over a
// list inside a range over the same list grows with a power of its
// length, and must not take the node's memory.
type budgetWriter struct {
	buf  *bytes.Buffer
	left *int64
}

func (w budgetWriter) Write(p []byte) (int, error) {
	if *w.left -= int64(len(p)); *w.left < 0 {
		return 0, errRenderBudget
	}
	return w.buf.Write(p)
}

// render returns the field for one recipient's values, charging budget.
func (f *field) render(data map[string]any, buf *bytes.Buffer, budget *int64) (string, error) {
	if f.tmpl == nil {
		if *budget -= int64(len(f.text)); *budget < 0 {
			return "", errRenderBudget
		}
		return f.text, nil
	}
	buf.Reset()
	if err := f.tmpl.Execute(budgetWriter{buf: buf, left: budget}, data); err != nil {
		if errors.Is(err, errRenderBudget) {
			return "", errRenderBudget
		}
		return "", err
	}
	return buf.String(), nil
}

// composer renders the content of a request for each recipient.
type composer struct {
	raw, from, subject, text, html *field
	headers                        []header
	attachments                    []Attachment
	// budget is what the renderings of the request may still write.
	budget int64
}

type header struct {
	name  string
	value *field
}

// newComposer compiles every template of c; the messages it composes may
// together take budget octets.
func newComposer(c *Content, budget int64) (*composer, error) {
	var err error
	comp := &composer{attachments: c.Attachments, budget: budget}
	for _, f := range []struct {
		dst  **field
		name string
		text string
		html bool
	}{
		{&comp.raw, "content.raw", c.Raw, false},
		{&comp.from, "content.from", c.From, false},
		{&comp.subject, "content.subject", c.Subject, false},
		{&comp.text, "content.text", c.Text, false},
		{&comp.html, "content.html", c.HTML, true},
	} {
		if *f.dst, err = compile(f.name, f.text, f.html); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := compile("content.headers."+name, c.Headers[name], false)
		if err != nil {
			return nil, err
		}
		comp.headers = append(comp.headers, header{name: name, value: v})
	}
	return comp, nil
}

// compose returns the message for one recipient, lines ending in CRLF.
// An error is a *FieldError naming the field whose template failed.
func (c *composer) compose(rcpt *Recipient, path string) ([]byte, error) {
	var tmp bytes.Buffer
	render := func(f *field) (string, error) {
		s, err := f.render(rcpt.Substitutions, &tmp, &c.budget)
		if errors.Is(err, errRenderBudget) {
			return "", err
		}
		if err != nil {
			return "", fieldErr(path+".substitutions", "%s: %v", f.name, cleanTemplateErr(err))
		}
		return s, nil
	}
	if c.raw.text != "" {
		raw, err := render(c.raw)
		if err != nil {
			return nil, err
		}
		return crlf(raw), nil
	}
	from, err := render(c.from)
	if err != nil {
		return nil, err
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fieldErr("content.from", "%q is not an address: %v", from, err)
	}
	subject, err := render(c.subject)
	if err != nil {
		return nil, err
	}
	text, err := render(c.text)
	if err != nil {
		return nil, err
	}
	html, err := render(c.html)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	writeField(&out, "From", addr.String())
	writeField(&out, "To", (&mail.Address{Address: rcpt.Email}).String())
	if subject != "" {
		writeField(&out, "Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	}
	for _, h := range c.headers {
		v, err := render(h.value)
		if err != nil {
			return nil, err
		}
		writeField(&out, h.name, mime.QEncoding.Encode("utf-8", oneLine(v)))
	}
	writeField(&out, "MIME-Version", "1.0")
	if err := c.writeBody(&out, text, html); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// entity is a MIME entity: its content fields and its body.
type entity struct {
	contentType, encoding string
	body                  []byte
}

func (e *entity) header() textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", e.contentType)
	if e.encoding != "" {
		h.Set("Content-Transfer-Encoding", e.encoding)
	}
	return h
}

// writeBody writes the content fields, the blank line and the body: one
// text part, or multipart/alternative for text and HTML, inside
// multipart/mixed when there are attachments.
func (c *composer) writeBody(out *bytes.Buffer, text, html string) error {
	e := textEntity(text, html)
	if len(c.attachments) > 0 {
		var err error
		if e, err = c.mixed(e); err != nil {
			return err
		}
	}
	writeField(out, "Content-Type", e.contentType)
	if e.encoding != "" {
		writeField(out, "Content-Transfer-Encoding", e.encoding)
	}
	out.WriteString("\r\n")
	out.Write(e.body)
	return nil
}

// mixed returns multipart/mixed of first and the attachments.
func (c *composer) mixed(first entity) (entity, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	pw, err := mw.CreatePart(first.header())
	if err != nil {
		return entity{}, fmt.Errorf("httpin: compose: %w", err)
	}
	pw.Write(first.body)
	for _, a := range c.attachments {
		if c.budget -= int64(len(a.decoded)) * 4 / 3; c.budget < 0 {
			return entity{}, errRenderBudget
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", mime.FormatMediaType(ct, map[string]string{"name": a.Filename}))
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename}))
		h.Set("Content-Transfer-Encoding", "base64")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return entity{}, fmt.Errorf("httpin: compose: %w", err)
		}
		writeBase64(pw, a.decoded)
	}
	if err := mw.Close(); err != nil {
		return entity{}, fmt.Errorf("httpin: compose: %w", err)
	}
	return entity{contentType: "multipart/mixed; boundary=\"" + mw.Boundary() + "\"", body: b.Bytes()}, nil
}

// textEntity returns text, html, or both as multipart/alternative.
func textEntity(text, html string) entity {
	switch {
	case html == "":
		return qpEntity("text/plain", text)
	case text == "":
		return qpEntity("text/html", html)
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range []entity{qpEntity("text/plain", text), qpEntity("text/html", html)} {
		pw, _ := mw.CreatePart(p.header()) // writes to a bytes.Buffer cannot fail
		pw.Write(p.body)
	}
	mw.Close()
	return entity{contentType: "multipart/alternative; boundary=\"" + mw.Boundary() + "\"", body: b.Bytes()}
}

// qpEntity returns body as a quoted-printable UTF-8 part of type typ.
func qpEntity(typ, body string) entity {
	var b bytes.Buffer
	qp := quotedprintable.NewWriter(&b)
	io.WriteString(qp, body)
	qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return entity{contentType: typ + "; charset=utf-8", encoding: "quoted-printable", body: b.Bytes()}
}

// writeBase64 writes b in base64 lines of 76 characters (RFC 2045).
func writeBase64(w io.Writer, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		io.WriteString(w, enc[:76]+"\r\n")
		enc = enc[76:]
	}
	io.WriteString(w, enc+"\r\n")
}

func writeField(out *bytes.Buffer, name, value string) {
	out.WriteString(name)
	out.WriteString(": ")
	out.WriteString(value)
	out.WriteString("\r\n")
}

// oneLine replaces the line breaks a substituted value may bring, which
// would otherwise start a header field of the sender's choosing.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
}

// crlf makes every line of a raw message end in CRLF: JSON clients often
// send bare LFs. A bare CR stays, and ingest refuses it as SMTP does.
func crlf(s string) []byte {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}
