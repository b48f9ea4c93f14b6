package bouncein_test

import (
	"fmt"
	"strings"
	"testing"

	"corriere/core/event"
	"corriere/core/verp"
)

// arfWithHeaders is a feedback report whose only trace of the message is
// its header section, quoted as headers (the recipient redacted, as
// Microsoft's and Yahoo's loops do).
func arfWithHeaders(headers string) []byte {
	return []byte("From: feedbackloop@provider.example\r\nTo: " + fblAddress + "\r\nSubject: Complaint\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n" +
		"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers +
		"From: shop@negozio.example\r\nTo: [redacted]\r\nSubject: Offerte\r\n--b--\r\n")
}

// TestComplaintThroughReference: a report to the feedback-loop address
// that quotes only the message's header section is attributed through the
// reference header: the recipient is suppressed for the tenant the
// reference names, and the complaint carries the source IP and provider
// for the rates. Replays count once; a reference that does not verify, or
// none, changes nothing and counts as unattributed; a reference without a
// recipient (several in one transaction) counts the complaint and
// suppresses no one, and the reports of several of its recipients count
// one each.
func TestComplaintThroughReference(t *testing.T) {
	other, err := verp.New([]byte("a different key of enough length"))
	if err != nil {
		t.Fatal(err)
	}
	const rcpt = "cliente@mail.example"
	for _, tc := range []struct {
		name                string
		headers             func(f *fixture) string
		sends               int
		vary                bool // each send quotes a different recipient's copy
		suppressed          bool
		complaints          int
		unattributed        int64
		complainedRecipient string
	}{
		{"reference only, recipient redacted", func(f *fixture) string {
			return "Received: by mx.mail.example\r\n" + verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0,
				Rcpt: rcpt, Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 1, false, true, 1, 0, rcpt},
		{"folded after the colon", func(f *fixture) string {
			return verp.RefHeader + ":\r\n " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0,
				Rcpt: rcpt, Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 1, false, true, 1, 0, rcpt},
		{"the same report three times", func(f *fixture) string {
			return verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0,
				Rcpt: rcpt, Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 3, false, true, 1, 0, rcpt},
		{"several recipients in the transaction", func(f *fixture) string {
			return verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: -1,
				Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 1, false, false, 1, 0, ""},
		{"several recipients, the same report three times", func(f *fixture) string {
			return verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: -1,
				Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 3, false, false, 1, 0, ""},
		{"several recipients, three of them complain", func(f *fixture) string {
			return verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: -1,
				Source: "192.0.2.7", Provider: "gmail"}) + "\r\n"
		}, 3, true, false, 3, 0, ""},
		{"altered reference", func(f *fixture) string {
			v := f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0, Rcpt: rcpt})
			i := len(v) / 2
			c := byte('A')
			if v[i] == 'A' {
				c = 'B'
			}
			return verp.RefHeader + ": " + v[:i] + string(c) + v[i+1:] + "\r\n"
		}, 1, false, false, 0, 1, ""},
		{"sealed with another key", func(*fixture) string {
			return verp.RefHeader + ": " + other.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0, Rcpt: rcpt}) + "\r\n"
		}, 1, false, false, 0, 1, ""},
		{"a forged reference on top of a real one", func(f *fixture) string {
			return verp.RefHeader + ": 1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n" +
				verp.RefHeader + ": " + f.signer.Seal(verp.Reference{Tenant: "negozio", MsgID: "1hrefmsg0001", Index: 0, Rcpt: rcpt}) + "\r\n"
		}, 1, false, false, 0, 1, ""},
		{"no reference", func(*fixture) string { return "" }, 1, false, false, 0, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t)
			headers := tc.headers(f)
			for i := range tc.sends {
				raw := arfWithHeaders(headers)
				if tc.vary {
					raw = arfWithHeaders(fmt.Sprintf("To: reader%d@mail.example\r\n", i) + headers)
				}
				if err := f.send(t, fblAddress, raw); err != nil {
					t.Fatalf("report refused: %v", err)
				}
			}
			_, found, err := f.list.Lookup("negozio", rcpt)
			if err != nil || found != tc.suppressed {
				t.Errorf("suppressed for negozio = %v (err %v), want %v", found, err, tc.suppressed)
			}
			c := f.events.Of(event.Complained)
			if len(c) != tc.complaints {
				t.Fatalf("complained events %+v, want %d", c, tc.complaints)
			}
			if tc.complaints > 0 {
				e := c[0]
				if e.Tenant != "negozio" || e.Recipient != tc.complainedRecipient || e.Source != "192.0.2.7" || e.Provider != "gmail" ||
					e.MsgID != "1hrefmsg0001" || !strings.Contains(e.Reason, verp.RefHeader) {
					t.Errorf("complained event %+v", e)
				}
			}
			got := f.srv.Counts()
			if got.Complaints != int64(tc.complaints) || got.Referenced != int64(tc.complaints) || got.Unattributed != tc.unattributed {
				t.Errorf("counts %+v, want %d complaints through the reference, %d unattributed", got, tc.complaints, tc.unattributed)
			}
		})
	}
}

// TestReferenceAddsSourceToVERPComplaint: a report that quotes both the
// VERP address and the reference of the same recipient is one complaint,
// taken through the VERP address, with the reference's source IP and
// provider.
func TestReferenceAddsSourceToVERPComplaint(t *testing.T) {
	f := start(t)
	ref := f.signer.Seal(verp.Reference{Tenant: "ricette", MsgID: f.msgID, Index: 1, Rcpt: "p2@patients.example", Source: "192.0.2.9", Provider: "libero"})
	raw := strings.Replace(string(arfQuoting(f.verpFor(1))), "Return-Path:", verp.RefHeader+": "+ref+"\r\nReturn-Path:", 1)
	if err := f.send(t, fblAddress, []byte(raw)); err != nil {
		t.Fatalf("report refused: %v", err)
	}
	c := f.events.Of(event.Complained)
	if len(c) != 1 || c[0].Recipient != "p2@patients.example" || c[0].Tenant != "ricette" || c[0].Source != "192.0.2.9" || c[0].Provider != "libero" {
		t.Fatalf("complained events %+v, want one with the reference's source and provider", c)
	}
	if got := f.srv.Counts(); got.Complaints != 1 || got.Referenced != 0 {
		t.Errorf("counts %+v, want one complaint through the VERP address", got)
	}
}
