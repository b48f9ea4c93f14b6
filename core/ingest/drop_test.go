package ingest

import (
	"context"
	"strings"
	"testing"

	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/extension"
	"corriere/core/reply"
	"corriere/core/spool"
)

// checkFunc adapts a function to extension.RecipientCheck.
type checkFunc func(tenant, rcpt string) error

func (f checkFunc) CheckRecipient(_ context.Context, tenant, rcpt string) error {
	return f(tenant, rcpt)
}

// suppressionStandIn drops gone@ and refuses bad@ for tenant acme, as the
// suppression list does in its two modes.
var suppressionStandIn = checkFunc(func(tenant, rcpt string) error {
	switch {
	case tenant == "acme" && strings.HasPrefix(rcpt, "gone@"):
		return &extension.Drop{Category: "userunknown", Reason: "suppressed since 2026-11-30"}
	case tenant == "acme" && strings.HasPrefix(rcpt, "bad@"):
		return &extension.Refusal{Reason: "suppressed", Reply: reply.New(550, "5.1.1", "Recipient <"+rcpt+"> is suppressed")}
	case strings.HasPrefix(rcpt, "plain@"):
		return reply.New(550, "5.7.1", "Not here")
	}
	return nil
})

func startDropServer(t *testing.T) (*Server, string, *spool.Spool, *collector, *eventtest.Recorder) {
	t.Helper()
	log := &eventtest.Recorder{}
	s, addr, sp, col := startServer(t, serverSetup{insecureAuth: true, checks: []extension.RecipientCheck{suppressionStandIn}, events: log.Bus()})
	return s, addr, sp, col, log
}

var authAcme = []string{"c <- 220", "c -> EHLO client.example", "c <- 250", "c -> AUTH PLAIN AGFjbWUAc2VjcmV0", "c <- 235"}

func dialogue(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDropOneOfTwoRecipients(t *testing.T) {
	t.Parallel()
	s, addr, sp, col, log := startDropServer(t)
	runDialogue(t, addr, dialogue(authAcme, []string{
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<gone@dest.example>", "c <- 250",
		"c -> RCPT TO:<gone@dest.example>", "c <- 250", // a duplicate, dropped once
		"c -> RCPT TO:<ok@dest.example>", "c <- 250",
		"c -> DATA", "c <- 354", "c -> Subject: hi", "c ->", "c -> body", "c -> .", "c <- 250",
		"c -> QUIT", "c <- 221",
	}))
	if len(col.metas) != 1 || len(col.ents[0]) != 1 || col.ents[0][0].Rcpt.Addr != "ok@dest.example" {
		t.Fatalf("queued %d messages, entries %+v; want one with ok@dest.example only", len(col.metas), col.ents)
	}
	id := col.metas[0].ID
	_, entries, err := spoolScan(sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Rcpt.Addr != "ok@dest.example" {
		t.Errorf("spool holds %+v; want ok@dest.example only", entries)
	}
	sup := log.Of(event.Suppressed)
	if len(sup) != 1 {
		t.Fatalf("suppressed events = %+v; want one", sup)
	}
	if e := sup[0]; e.MsgID != id || e.Recipient != "gone@dest.example" || e.Tenant != "acme" || e.Category != "userunknown" ||
		e.Sender != "news@acme.example" || e.Class == "" || !strings.Contains(e.Reason, "2026-11-30") {
		t.Errorf("suppressed event = %+v", e)
	}
	if rec := log.Of(event.Received); len(rec) != 1 || rec[0].Recipients != 1 {
		t.Errorf("received events = %+v; want one with 1 recipient", rec)
	}
	if n := s.Rejections()["recipient_dropped"]; n != 1 {
		t.Errorf("recipient_dropped = %d, want 1", n)
	}
}

func TestDropEveryRecipient(t *testing.T) {
	t.Parallel()
	_, addr, sp, col, log := startDropServer(t)
	runDialogue(t, addr, dialogue(authAcme, []string{
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<gone@dest.example>", "c <- 250",
		"c -> RCPT TO:<gone@other.example>", "c <- 250",
		"c -> DATA", "c <- 354", "c -> Subject: hi", "c ->", "c -> body", "c -> .", "c <- 250",
		// The session goes on normally: the next transaction is unaffected.
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> DATA", "c <- 502 5.5.1",
		"c -> QUIT", "c <- 221",
	}))
	if len(col.metas) != 0 {
		t.Errorf("queued %d messages; want none", len(col.metas))
	}
	metas, _, err := spoolScan(sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 0 {
		t.Errorf("spool holds %d messages; want none", len(metas))
	}
	sup := log.Of(event.Suppressed)
	if len(sup) != 2 || sup[0].MsgID == "" || sup[0].MsgID != sup[1].MsgID {
		t.Errorf("suppressed events = %+v; want two sharing a message ID", sup)
	}
	if rec := log.Of(event.Received); len(rec) != 0 {
		t.Errorf("received events = %+v; want none", rec)
	}
}

func TestDroppedThenResetEmitsNothing(t *testing.T) {
	t.Parallel()
	_, addr, _, col, log := startDropServer(t)
	runDialogue(t, addr, dialogue(authAcme, []string{
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<gone@dest.example>", "c <- 250",
		"c -> RSET", "c <- 250",
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<ok@dest.example>", "c <- 250",
		"c -> DATA", "c <- 354", "c -> Subject: hi", "c ->", "c -> body", "c -> .", "c <- 250",
		"c -> QUIT", "c <- 221",
	}))
	if len(col.metas) != 1 || len(col.ents[0]) != 1 {
		t.Fatalf("queued %+v", col.ents)
	}
	if sup := log.Of(event.Suppressed); len(sup) != 0 {
		t.Errorf("suppressed events after RSET = %+v; want none", sup)
	}
}

func TestRefusalReason(t *testing.T) {
	t.Parallel()
	s, addr, _, _, log := startDropServer(t)
	runDialogue(t, addr, dialogue(authAcme, []string{
		"c -> MAIL FROM:<news@acme.example>", "c <- 250",
		"c -> RCPT TO:<bad@dest.example>", "c <- 550 5.1.1 Recipient <bad@dest.example> is suppressed",
		"c -> RCPT TO:<plain@dest.example>", "c <- 550 5.7.1 Not here",
		"c -> QUIT", "c <- 221",
	}))
	rej := s.Rejections()
	if rej["suppressed"] != 1 || rej["recipient_refused"] != 1 {
		t.Errorf("rejections = %v; want suppressed 1, recipient_refused 1", rej)
	}
	if ev := log.Of(event.Rejected); len(ev) != 2 || ev[0].Reason != "suppressed" {
		t.Errorf("rejected events = %+v", ev)
	}
}

// spoolScan returns every message and entry in sp.
func spoolScan(sp *spool.Spool) ([]*spool.Meta, []*spool.Entry, error) {
	var metas []*spool.Meta
	var entries []*spool.Entry
	err := sp.Scan(func(m *spool.Meta, es []*spool.Entry) error {
		metas = append(metas, m)
		entries = append(entries, es...)
		return nil
	})
	return metas, entries, err
}
