package ingest

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// TestSubmit: a submission meets the checks of an SMTP transaction and,
// accepted, is spooled and queued with a queue id.
func TestSubmit(t *testing.T) {
	s, _, sp, col := startServer(t, serverSetup{})
	acme, _ := testTenants(t).Lookup("acme")
	origin := Origin{Tenant: acme, Client: netip.MustParseAddr("127.0.0.1"), Proto: "HTTP"}
	good := "From: news@acme.example\r\nSubject: hi\r\n\r\nbody\r\n"
	tests := []struct {
		name    string
		sub     Submission
		reply   string // "" when accepted
		refused int
	}{
		{"accepted", Submission{Sender: "news@acme.example", Recipients: []string{"a@dest.example"}, Raw: []byte(good)}, "", 0},
		{"one recipient refused", Submission{Sender: "news@acme.example", Recipients: []string{"a@dest.example", "not an address"}, Raw: []byte(good)}, "", 1},
		{"foreign sender", Submission{Sender: "news@other.example", Recipients: []string{"a@dest.example"}, Raw: []byte(good)}, "553 5.7.1", 0},
		{"null sender", Submission{Sender: "", Recipients: []string{"a@dest.example"}, Raw: []byte(good)}, "553 5.7.1", 0},
		{"foreign From", Submission{Sender: "news@acme.example", Recipients: []string{"a@dest.example"}, Raw: []byte(strings.Replace(good, "acme", "other", 1))}, "553 5.7.1", 0},
		{"bare LF", Submission{Sender: "news@acme.example", Recipients: []string{"a@dest.example"}, Raw: []byte("Subject: hi\n\nbody\n")}, "550 5.5.2", 0},
		{"too big", Submission{Sender: "news@acme.example", Recipients: []string{"a@dest.example"}, Raw: []byte(good + strings.Repeat("x", 10000))}, "552 5.3.4", 0},
		{"no recipient", Submission{Sender: "news@acme.example", Recipients: []string{"not an address"}, Raw: []byte(good)}, "554 5.5.1", 1},
		{"address literal", Submission{Sender: "news@acme.example", Recipients: []string{"a@[192.0.2.1]"}, Raw: []byte(good)}, "554 5.5.1", 1},
	}
	subs := make([]Submission, len(tests))
	for i, tt := range tests {
		subs[i] = tt.sub
	}
	out, err := s.Submit(context.Background(), origin, subs)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i, tt := range tests {
		o := out[i]
		got := ""
		if o.Reply != nil {
			got = o.Reply.String()
		}
		if (tt.reply == "") != (o.Reply == nil) || !strings.HasPrefix(got, tt.reply) || len(o.Refused) != tt.refused {
			t.Errorf("%s: reply %q, %d refused; want %q, %d", tt.name, got, len(o.Refused), tt.reply, tt.refused)
			continue
		}
		if tt.reply == "" {
			accepted++
			if _, err := sp.Meta(o.ID); o.ID == "" || err != nil {
				t.Errorf("%s: id %q not in the spool: %v", tt.name, o.ID, err)
			}
		}
	}
	col.mu.Lock()
	queued := len(col.metas)
	col.mu.Unlock()
	if queued != accepted {
		t.Errorf("%d messages queued, want %d", queued, accepted)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(context.Background(), origin, subs[:1]); err != ErrShuttingDown {
		t.Errorf("Submit after Shutdown: %v, want ErrShuttingDown", err)
	}
}
