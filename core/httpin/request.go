package httpin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// Request is the body of POST /api/inject/v1 (see openapi.yaml).
type Request struct {
	// Sender is the envelope sender (the return path).
	Sender string `json:"sender"`
	// Recipients each get a message of their own, rendered with their
	// substitutions.
	Recipients []Recipient `json:"recipients"`
	// Content is the message: raw, or parts to assemble.
	Content Content `json:"content"`
}

// Recipient is one envelope recipient and its substitution values.
type Recipient struct {
	Email         string         `json:"email"`
	Substitutions map[string]any `json:"substitutions,omitempty"`
}

// Content is either Raw, a whole RFC 5322 message, or the parts of one.
// Every text field is a template rendered per recipient.
type Content struct {
	Raw         string            `json:"raw,omitempty"`
	From        string            `json:"from,omitempty"`
	Subject     string            `json:"subject,omitempty"`
	Text        string            `json:"text,omitempty"`
	HTML        string            `json:"html,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Attachments []Attachment      `json:"attachments,omitempty"`
}

// Attachment is a file attached to the message.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	// Data is the file's content in standard base64.
	Data string `json:"data"`

	decoded []byte
}

// FieldError is a malformed request: it names the field at fault, in the
// JSON path notation of the reply ("recipients[2].email").
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error returns "field: message".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// decodeRequest reads one JSON Request from r and checks its shape.
func decodeRequest(r io.Reader, maxRecipients int) (*Request, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, fieldErr("", "unexpected data after the JSON object")
	}
	return &req, req.check(maxRecipients)
}

// jsonError names the field a decoding error is about, as well as
// encoding/json lets us know it.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &syn):
		return fieldErr("", "malformed JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return fieldErr(typ.Field, "must be %s, not a JSON %s", kindOf(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF):
		return fieldErr("", "empty body: a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("", "malformed JSON: the body ends inside the object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErr(name, "unknown field")
	}
	return fieldErr("", "malformed JSON: %v", err)
}

func kindOf(k string) string {
	switch k {
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64":
		return "a number"
	}
	return "a " + k
}

// check refuses a request that is well-formed JSON but not a valid
// submission.
func (req *Request) check(maxRecipients int) error {
	if req.Sender == "" {
		return fieldErr("sender", "is required: the envelope sender, where bounces go")
	}
	switch n := len(req.Recipients); {
	case n == 0:
		return fieldErr("recipients", "is required: at least one recipient")
	case n > maxRecipients:
		return fieldErr("recipients", "has %d entries; at most %d per request", n, maxRecipients)
	}
	for i, r := range req.Recipients {
		if r.Email == "" || strings.ContainsAny(r.Email, "\r\n") {
			return fieldErr(fmt.Sprintf("recipients[%d].email", i), "is required: the recipient's address")
		}
	}
	c := &req.Content
	if c.Raw != "" {
		if c.From != "" || c.Subject != "" || c.Text != "" || c.HTML != "" || len(c.Headers) > 0 || len(c.Attachments) > 0 {
			return fieldErr("content.raw", "excludes from, subject, text, html, headers and attachments: give a raw message or its parts")
		}
		return nil
	}
	if c.From == "" {
		return fieldErr("content.from", "is required without content.raw: the From: field")
	}
	if c.Text == "" && c.HTML == "" {
		return fieldErr("content.text", "or content.html is required without content.raw")
	}
	for name, v := range c.Headers {
		if !validFieldName(name) {
			return fieldErr("content.headers", "%q is not a header field name", name)
		}
		if reserved[textproto.CanonicalMIMEHeaderKey(name)] {
			return fieldErr("content.headers."+name, "is set from the other fields of content; it cannot be given here")
		}
		if strings.ContainsAny(v, "\r\n") {
			return fieldErr("content.headers."+name, "must be one line: no CR or LF")
		}
	}
	for i := range c.Attachments {
		a := &c.Attachments[i]
		field := fmt.Sprintf("content.attachments[%d]", i)
		if a.Filename == "" || strings.ContainsAny(a.Filename, "\r\n\"\\") {
			return fieldErr(field+".filename", "is required, one line, without quotes or backslashes")
		}
		if a.ContentType != "" && (strings.ContainsAny(a.ContentType, "\r\n") || !strings.Contains(a.ContentType, "/")) {
			return fieldErr(field+".content_type", "%q is not a media type", a.ContentType)
		}
		b, err := base64.StdEncoding.DecodeString(a.Data)
		if err != nil {
			return fieldErr(field+".data", "is not standard base64: %v", err)
		}
		a.decoded = b
	}
	return nil
}

// reserved are the fields the parts build; headers may not set them.
var reserved = map[string]bool{
	"From": true, "To": true, "Subject": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true,
}

// validFieldName reports whether name is an RFC 5322 field name.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
