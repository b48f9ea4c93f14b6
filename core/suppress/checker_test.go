package suppress

import (
	"context"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/extension"
	"corriere/core/ingest"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/spool"
	"corriere/core/tenant"
)

func TestCheckerReject(t *testing.T) {
	l, _ := openList(t, t.TempDir())
	l.Add(Entry{Tenant: "acme", Address: "gone@dest.example", Category: "userunknown", Source: SourceBounce,
		Reason: "550 5.1.1 <gone@dest.example>: no such user\r\n(second line)"})
	l.Add(Entry{Tenant: "", Address: "gone@dest.example", Source: SourceManual})
	evs := &eventtest.Recorder{}
	bus := evs.Bus()
	c := &Checker{List: l, Events: bus, Tenants: tenant.Static{
		"acme": {Name: "acme", SuppressionMode: ModeReject},
		"beta": {Name: "beta", SuppressionMode: ModeDrop},
	}}
	for _, tc := range []struct {
		tenant, rcpt string
		want         string // the reply, or "" for accepted
	}{
		{"acme", "gone@dest.example", `550 5.1.1 Recipient <gone@dest.example> is suppressed for tenant acme since 2026-11-30: userunknown (550 5.1.1 <gone@dest.example>: no such user (second line)); remove it with "corriere suppression remove" if this is wrong`},
		{"acme", "Gone@DEST.example", "550 5.1.1 Recipient <gone@dest.example>"},
		{"", "gone@dest.example", "550 5.1.1 Recipient <gone@dest.example> is suppressed for relayed mail (no tenant) since 2026-11-30: manual;"},
		{"acme", "ok@dest.example", ""},
		{"beta", "gone@dest.example", ""}, // the same address is deliverable for beta
		{"unknown", "gone@dest.example", ""},
	} {
		err := c.CheckRecipient(context.Background(), tc.tenant, tc.rcpt)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v; want accepted", tc.tenant, tc.rcpt, err)
			}
			continue
		}
		var rf *extension.Refusal
		if !errors.As(err, &rf) || rf.Reason != "suppressed" || !strings.HasPrefix(rf.Reply.String(), tc.want) {
			t.Errorf("%s %s: %v\nwant %s", tc.tenant, tc.rcpt, err, tc.want)
		}
		if r := reply.From(err); r == nil || r.Code != 550 || r.Status.String() != "5.1.1" {
			t.Errorf("%s %s: reply %v", tc.tenant, tc.rcpt, r)
		}
	}
	sup := evs.Of(event.Suppressed)
	if len(sup) != 3 || sup[0].Tenant != "acme" || sup[0].Recipient != "gone@dest.example" || sup[0].Category != "userunknown" ||
		!strings.HasPrefix(sup[0].Reply, "550 5.1.1") || sup[0].MsgID != "" {
		t.Errorf("suppressed events = %+v", sup)
	}
	if len(RefusalReply(Entry{Address: "a@b.example", Reason: strings.Repeat("x", 2000)}).String()) > 400 {
		t.Error("a long reason is not shortened")
	}
}

// queued is the queue side of ingest in these tests.
type queued struct {
	mu      sync.Mutex
	entries [][]*spool.Entry
}

func (q *queued) Add(_ *spool.Meta, entries []*spool.Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.entries = append(q.entries, entries)
}

func TestCheckerDropOverSMTP(t *testing.T) {
	l, sp := openList(t, t.TempDir())
	l.Add(Entry{Tenant: "acme", Address: "gone@dest.example", Category: "userunknown", Source: SourceBounce})
	l.Add(Entry{Tenant: "strict", Address: "gone@dest.example", Category: "userunknown", Source: SourceBounce})
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tenants := tenant.Static{
		"acme":   {Name: "acme", PasswordHash: string(hash), SuppressionMode: ModeDrop},
		"strict": {Name: "strict", PasswordHash: string(hash)},
	}
	evs := &eventtest.Recorder{}
	bus := evs.Bus()
	q := &queued{}
	srv, err := ingest.New(ingest.Options{
		Hostname: "mta.test", InsecureAuthLoopback: true, Tenants: tenants, Policy: &policy.Default{},
		RecipientChecks: []extension.RecipientCheck{&Checker{List: l, Tenants: tenants, Events: bus}},
		Spool:           sp, Queue: q, Events: bus,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	send := func(user string, rcpts ...string) error {
		t.Helper()
		c, err := smtp.Dial(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(smtp.PlainAuth("", user, "secret", "127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("news@acme.example"); err != nil {
			t.Fatal(err)
		}
		for _, r := range rcpts {
			if err := c.Rcpt(r); err != nil {
				return err
			}
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("Subject: hi\r\n\r\nbody\r\n"))
		if err := w.Close(); err != nil {
			t.Fatalf("end of DATA: %v", err)
		}
		return c.Quit()
	}

	// One suppressed, one good recipient: only the good one is spooled.
	if err := send("acme", "gone@dest.example", "ok@dest.example"); err != nil {
		t.Fatal(err)
	}
	if len(q.entries) != 1 || len(q.entries[0]) != 1 || q.entries[0][0].Rcpt.Addr != "ok@dest.example" {
		t.Fatalf("queued %+v; want ok@dest.example only", q.entries)
	}
	sup := evs.Of(event.Suppressed)
	if len(sup) != 1 || sup[0].MsgID != q.entries[0][0].MsgID || sup[0].Recipient != "gone@dest.example" ||
		sup[0].Tenant != "acme" || !strings.Contains(sup[0].Reason, "since 2026-11-30") {
		t.Errorf("suppressed events = %+v", sup)
	}

	// Only a suppressed recipient: 250 after DATA, nothing spooled.
	if err := send("acme", "gone@dest.example"); err != nil {
		t.Fatal(err)
	}
	if len(q.entries) != 1 {
		t.Errorf("queued %d messages; want still 1", len(q.entries))
	}
	n := 0
	sp.Scan(func(*spool.Meta, []*spool.Entry) error { n++; return nil })
	if n != 1 {
		t.Errorf("spool holds %d messages; want 1", n)
	}
	if sup := evs.Of(event.Suppressed); len(sup) != 2 || sup[1].MsgID == "" || sup[1].MsgID == sup[0].MsgID {
		t.Errorf("suppressed events = %+v", sup)
	}

	// A tenant in reject mode: 550 5.1.1 at RCPT.
	err = send("strict", "gone@dest.example")
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 || !strings.Contains(te.Msg, "5.1.1 Recipient <gone@dest.example> is suppressed for tenant strict since 2026-11-30: userunknown") {
		t.Errorf("RCPT for strict = %v", err)
	}
	if got := srv.Rejections()["suppressed"]; got != 1 {
		t.Errorf("suppressed rejections = %d", got)
	}
}
