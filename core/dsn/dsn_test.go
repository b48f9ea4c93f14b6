package dsn

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"corriere/core/message"
	"corriere/core/reply"
)

const original = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\nMessage-ID: <abc@example.org>\r\n\r\nBody line\r\n"

// parts parses a DSN back and returns its parts' content types and bodies.
func parts(t *testing.T, raw []byte) (textproto.Header, []string, [][]byte) {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, raw)
	}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("DSN is not multipart")
	}
	var types []string
	var bodies [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.ContentType()
		b, _ := io.ReadAll(p.Body)
		types = append(types, ct)
		bodies = append(bodies, b)
	}
	return e.Header.Header, types, bodies
}

func TestBuild(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		ret       message.Ret
		rcpts     []Recipient
		wantTypes []string
		wantIn    []string // substrings of the delivery-status part
		subject   string
	}{
		{
			name: "hard bounce, headers only",
			rcpts: []Recipient{{Addr: "bob@example.net", ORCPT: "rfc822;bob@example.net", Action: Failed,
				RemoteMTA: "mx.example.net", Diagnostic: reply.New(550, "5.1.1", "User unknown")}},
			wantTypes: []string{"text/plain", "message/delivery-status", "text/rfc822-headers"},
			wantIn: []string{"Reporting-MTA: dns; mta.test", "Original-Envelope-Id: ENV1", "Final-Recipient: rfc822; bob@example.net",
				"Original-Recipient: rfc822;bob@example.net", "Action: failed", "Status: 5.1.1",
				"Remote-MTA: dns; mx.example.net", "Diagnostic-Code: smtp; 550 5.1.1 User unknown"},
			subject: "Undelivered Mail Returned to Sender",
		},
		{
			name:      "expiry, full return",
			ret:       message.RetFull,
			rcpts:     []Recipient{{Addr: "c@slow.example", Action: Failed, Status: reply.Status{Class: 4, Subject: 4, Detail: 7}, Reason: "gave up after 5 days"}},
			wantTypes: []string{"text/plain", "message/delivery-status", "message/rfc822"},
			wantIn:    []string{"Status: 4.4.7", "X-Corriere-Reason: gave up after 5 days"},
			subject:   "Undelivered Mail Returned to Sender",
		},
		{
			name:      "delay",
			rcpts:     []Recipient{{Addr: "d@slow.example", Action: Delayed, Diagnostic: reply.New(451, "4.7.1", "try later"), WillRetryUntil: now.Add(96 * time.Hour)}},
			wantTypes: []string{"text/plain", "message/delivery-status", "text/rfc822-headers"},
			wantIn:    []string{"Action: delayed", "Status: 4.7.1", "Will-Retry-Until:"},
			subject:   "Delivery Status Notification (Delay)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Build(&Report{ReportingMTA: "mta.test", To: "alice@example.org", EnvID: "ENV1", Ret: tt.ret,
				Arrival: now.Add(-time.Hour), Original: []byte(original), Recipients: tt.rcpts, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("DSN has bare LF line endings")
			}
			h, types, bodies := parts(t, raw)
			if got := strings.Join(types, ","); got != strings.Join(tt.wantTypes, ",") {
				t.Fatalf("part types = %s, want %s", got, strings.Join(tt.wantTypes, ","))
			}
			if h.Get("Subject") != tt.subject || h.Get("Auto-Submitted") != "auto-replied" || h.Get("In-Reply-To") != "<abc@example.org>" {
				t.Errorf("header: %v", h.Map())
			}
			if mt, params, _ := mimeType(h); mt != "multipart/report" || params["report-type"] != "delivery-status" {
				t.Errorf("content type %s %v", mt, params)
			}
			for _, s := range tt.wantIn {
				if !bytes.Contains(bodies[1], []byte(s)) {
					t.Errorf("delivery-status lacks %q:\n%s", s, bodies[1])
				}
			}
			if !bytes.Contains(bodies[2], []byte("Subject: hello")) {
				t.Errorf("original not returned")
			}
			if (tt.ret == message.RetFull) != bytes.Contains(bodies[2], []byte("Body line")) {
				t.Errorf("RET=%q: body returned = %v", tt.ret, !bytes.Contains(bodies[2], []byte("Body line")))
			}
		})
	}
}

func mimeType(h textproto.Header) (string, map[string]string, error) {
	hh := gomessage.Header{Header: h}
	return hh.ContentType()
}

func TestBuildRefusesNullSender(t *testing.T) {
	if _, err := Build(&Report{Recipients: []Recipient{{Addr: "a@b", Action: Failed}}}); err == nil {
		t.Fatal("built a DSN for the null sender")
	}
}
