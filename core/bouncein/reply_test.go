package bouncein_test

import (
	"strings"
	"testing"
	"time"

	"corriere/core/dsn"
	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/reply"
	"corriere/core/suppress"
)

// TestForwardedBounceQuotesTheReplyOnce: the provider's reply appears once
// in each place the listener quotes it — the forwarded DSN's
// Diagnostic-Code, its plain-language part, the bounced event, the
// suppression reason and the RCPT refusal made from it — whether the
// provider's Diagnostic-Code repeats the code, holds a multi-line reply, or
// has no enhanced status.
func TestForwardedBounceQuotesTheReplyOnce(t *testing.T) {
	const rcpt = "p2@patients.example"
	for _, tc := range []struct {
		name       string
		diagnostic *reply.Reply
		status     string // the DSN's Status field
		want       string
	}{
		{"code and status in the diagnostic", reply.New(550, "5.1.1", "<"+rcpt+">: user unknown"), "5.1.1",
			"550 5.1.1 <" + rcpt + ">: user unknown"},
		{"multi-line reply joined", &reply.Reply{Code: 550, Status: reply.Status{Class: 5, Subject: 1, Detail: 1},
			Text: "The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's address"}, "5.1.1",
			"550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's address"},
		{"no enhanced status in the reply", &reply.Reply{Code: 550, Text: "mailbox unavailable"}, "5.1.1",
			"550 5.1.1 mailbox unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t)
			to := f.verpFor(1)
			raw, err := dsn.Build(&dsn.Report{
				ReportingMTA: "mx.patients.example", To: to, Ret: message.RetHdrs, Now: time.Now(),
				Original: []byte("From: " + author + "\r\nSubject: Ricetta\r\n\r\n"),
				Recipients: []dsn.Recipient{{Addr: rcpt, Action: dsn.Failed, RemoteMTA: "mbox.patients.example",
					Status: mustStatus(t, tc.status), Diagnostic: tc.diagnostic}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.send(t, to, raw); err != nil {
				t.Fatalf("bounce refused: %v", err)
			}

			qs := f.queue.list()
			if len(qs) != 1 {
				t.Fatalf("%d messages queued, want the DSN to the author", len(qs))
			}
			content, err := f.spool.Content(qs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			// The provider's own bounce is attached after the report; only
			// what the listener wrote is checked.
			own, _, _ := strings.Cut(string(content), "Content-Type: message/rfc822")
			own, _, _ = strings.Cut(own, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.patients.example")
			for _, want := range []string{"Diagnostic-Code: smtp; " + tc.want + "\r\n", "mbox.patients.example said: " + tc.want + "\r\n"} {
				if n := strings.Count(own, want); n != 1 {
					t.Errorf("forwarded DSN holds %q %d times, want once:\n%s", want, n, own)
				}
			}
			if strings.Count(own, tc.want[:9]) != 2 {
				t.Errorf("forwarded DSN quotes %q %d times, want twice (report and plain part):\n%s", tc.want[:9], strings.Count(own, tc.want[:9]), own)
			}

			b := f.events.Of(event.Bounced)
			if len(b) != 1 || b[0].Reply != tc.want {
				t.Fatalf("bounced events: %+v, want reply %q", b, tc.want)
			}
			e, ok, err := f.list.Lookup("ricette", rcpt)
			if err != nil || !ok {
				t.Fatalf("not suppressed: %v", err)
			}
			if e.Reason != tc.want {
				t.Errorf("suppression reason %q, want %q", e.Reason, tc.want)
			}
			refusal := suppress.RefusalReply(e).String()
			// Its own "550 5.1.1", then the provider's reply in parentheses.
			if !strings.Contains(refusal, "("+tc.want+")") || strings.Count(refusal, tc.want[:9]) != 2 {
				t.Errorf("RCPT refusal %q does not quote %q once", refusal, tc.want)
			}
		})
	}
}

func mustStatus(t *testing.T, s string) reply.Status {
	t.Helper()
	st, ok := reply.ParseStatus(s)
	if !ok {
		t.Fatalf("bad status %q", s)
	}
	return st
}
