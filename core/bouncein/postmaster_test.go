package bouncein_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"corriere/core/bouncein"
	"corriere/core/event"
)

// TestPostmasterIsAccepted: RFC 5321 section 4.5.1 — the listener takes
// mail for postmaster of every domain it receives mail for (its host name,
// its feedback-loop domains, the tenants' bounce and return-path domains),
// and still refuses postmaster of other domains. With a postmaster address
// configured the message is queued there from the null sender; without
// one it is recorded as an event.
func TestPostmasterIsAccepted(t *testing.T) {
	const operator = "ops@platform.example"
	tenantDomain := func(d string) bool { return d == "bounce.shop.example" }
	for _, tc := range []struct {
		name      string
		rcpt      string
		forwardTo string
		accepted  bool
	}{
		{"host name", "postmaster@mta.platform.example", operator, true},
		{"feedback-loop domain", "postmaster@bounces.platform.example", operator, true},
		{"tenant's return-path domain, any case", "PostMaster@Bounce.Shop.Example", operator, true},
		{"no postmaster address: event only", "postmaster@bounce.shop.example", "", true},
		{"someone else's domain", "postmaster@elsewhere.example", operator, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startWith(t, filepath.Join("..", "..", "scripts"), func(o *bouncein.Options) {
				o.Domains, o.Postmaster = tenantDomain, tc.forwardTo
			})
			raw := []byte("From: admin@mx.patients.example\r\nSubject: your server\r\n\r\nPlease look at it.\r\n")
			err := f.send(t, tc.rcpt, raw)
			if !tc.accepted {
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
					t.Fatalf("RCPT %s: %v, want 550 5.1.1", tc.rcpt, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("mail to %s refused: %v", tc.rcpt, err)
			}
			ev := f.events.Of(event.Received)
			if len(ev) != 1 || ev[0].Recipient != tc.rcpt || !strings.Contains(ev[0].Reason, "postmaster") {
				t.Fatalf("received events %+v, want one about %s", ev, tc.rcpt)
			}
			qs := f.queue.list()
			if tc.forwardTo == "" {
				if len(qs) != 0 || ev[0].MsgID != "" {
					t.Fatalf("%d messages queued, event %+v; want none without a postmaster address", len(qs), ev[0])
				}
				return
			}
			if len(qs) != 1 || qs[0].Sender != "" || ev[0].MsgID != qs[0].ID {
				t.Fatalf("queued %+v, event %+v; want one message from <> to %s", qs, ev[0], tc.forwardTo)
			}
			if got := f.queue.rcpts(0); len(got) != 1 || got[0] != tc.forwardTo {
				t.Fatalf("forwarded to %v, want %s", got, tc.forwardTo)
			}
			content, err := f.spool.Content(qs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(content), "Received: from mx.patients.example") || !strings.HasSuffix(string(content), string(raw)) {
				t.Errorf("forwarded content:\n%s", content)
			}
		})
	}
}
