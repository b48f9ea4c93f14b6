package queue_test

import (
	"strings"
	"testing"
	"time"

	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/queue"
	"corriere/core/verp"
)

// TestVERPPerRecipient checks re-enveloped mail: each recipient travels in
// its own transaction with a signed envelope sender naming it, and the DSN
// of a failed recipient goes to the author, not to the platform.
func TestVERPPerRecipient(t *testing.T) {
	t.Parallel()
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, nil, func(o *queue.Options) { o.VERP = signer })
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	w.mx("studio.test", "mx.studio.test", "127.0.0.22")
	w.mx("bounces.test", "mx.bounces.test", "127.0.0.23")
	rx := w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(rcpt string, _ int) error {
		if strings.HasPrefix(rcpt, "unknown") {
			return mailtest.Reply(550, "5.1.1", "no such user")
		}
		return nil
	}})
	author := w.receiver("127.0.0.22", mailtest.Options{})
	platform := w.receiver("127.0.0.23", mailtest.Options{})

	raw := "From: Dott. Rossi <rossi@studio.test>\r\nSubject: ricetta\r\n\r\nHello.\r\n"
	h, body, err := message.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &message.Message{Header: h, Body: body, Class: message.Personal, Tenant: "ricette", Received: now}
	m.Sender, m.Author = "bounces@bounces.test", "rossi@studio.test"
	for _, r := range []string{"p1@a.test", "unknown@a.test", "p2@a.test"} {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r})
	}
	meta, entries, err := w.spool.Put(m, now)
	if err != nil {
		t.Fatal(err)
	}
	w.q.Add(meta, entries)
	w.waitDone(5 * time.Second)

	got := rx.Wait(t, 2, 5*time.Second)
	for _, g := range got {
		if len(g.To) != 1 {
			t.Fatalf("a transaction for %v: want one recipient per transaction", g.To)
		}
		ref, err := signer.Parse(g.From)
		if err != nil {
			t.Fatalf("MAIL FROM %q: %v", g.From, err)
		}
		if ref.MsgID != meta.ID || m.Recipients[ref.Index].Addr != g.To[0] {
			t.Errorf("MAIL FROM %q for %s refers to %+v", g.From, g.To[0], ref)
		}
		if !strings.HasSuffix(g.From, "@bounces.test") {
			t.Errorf("MAIL FROM %q is not on the bounce domain", g.From)
		}
	}
	dsn := author.Wait(t, 1, 5*time.Second)
	if dsn[0].From != "" || len(dsn[0].To) != 1 || dsn[0].To[0] != "rossi@studio.test" {
		t.Fatalf("DSN from %q to %v, want from <> to the author", dsn[0].From, dsn[0].To)
	}
	if fields := dsnFields(t, dsn[0].Data); !strings.Contains(fields, "Final-Recipient: rfc822; unknown@a.test") {
		t.Errorf("DSN to the author:\n%s", fields)
	}
	if n := len(platform.Messages()); n != 0 {
		t.Errorf("the platform's bounce address got %d messages", n)
	}
}
