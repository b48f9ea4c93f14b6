package ingest

import (
	"net/netip"
	"strings"
	"testing"

	"corriere/core/event"
	"corriere/core/event/eventtest"
)

// TestReplyNamesTheQueueID checks that the 250 after DATA carries the id
// the message is queued under, and that the same id is in its Received
// field and its received event: a client's log line must lead an operator
// to the message.
func TestReplyNamesTheQueueID(t *testing.T) {
	rec := &eventtest.Recorder{}
	_, addr, sp, col := startServer(t, serverSetup{
		relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		events:    rec.Bus(),
	})
	c, r, _ := dialFrom(t, addr, "127.0.0.1")
	for _, line := range []string{"EHLO client.example", "MAIL FROM:<app@anywhere.example>", "RCPT TO:<b@dest.example>", "DATA"} {
		send(t, c, r, line)
	}
	got := send(t, c, r, "Subject: id\r\n\r\nhello\r\n.")
	const prefix = "250 2.0.0 OK: queued as "
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("reply to the data %q, want %q and the id", got, prefix)
	}
	id := strings.TrimPrefix(got, prefix)
	if len(col.metas) != 1 || col.metas[0].ID != id {
		t.Fatalf("reply names %q; queued %+v", id, col.metas)
	}
	content, err := sp.Content(id)
	if err != nil {
		t.Fatalf("the id in the reply is not in the spool: %v", err)
	}
	if !strings.Contains(strings.SplitN(string(content), "\r\n\r\n", 2)[0], " id "+id) {
		t.Errorf("Received field does not name %s:\n%s", id, content)
	}
	// The event is emitted before the reply is written.
	if evs := rec.Of(event.Received); len(evs) != 1 || evs[0].MsgID != id {
		t.Errorf("received events %+v, reply names %q", evs, id)
	}
}
