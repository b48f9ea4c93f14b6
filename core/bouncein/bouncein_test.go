package bouncein_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"corriere/core/bouncein"
	"corriere/core/dsn"
	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/reply"
	"corriere/core/spool"
	"corriere/core/suppress"
	"corriere/core/verp"
)

// queued records what the listener hands to the queue.
type queued struct {
	mu      sync.Mutex
	metas   []*spool.Meta
	entries [][]*spool.Entry
}

func (q *queued) Add(meta *spool.Meta, entries []*spool.Entry) {
	q.mu.Lock()
	q.metas = append(q.metas, meta)
	q.entries = append(q.entries, entries)
	q.mu.Unlock()
}

// rcpts returns the recipients of the i-th message queued.
func (q *queued) rcpts(i int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, e := range q.entries[i] {
		out = append(out, e.Rcpt.Addr)
	}
	return out
}

func (q *queued) list() []*spool.Meta {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*spool.Meta(nil), q.metas...)
}

type fixture struct {
	addr   string
	signer *verp.Signer
	spool  *spool.Spool
	queue  *queued
	events *eventtest.Recorder
	srv    *bouncein.Server
	list   *suppress.List
	msgID  string // a re-enveloped message to p1@, p2@patients.example
}

const (
	author     = "rossi@studio-rossi.example"
	fblAddress = "fbl@bounces.platform.example"
)

func start(t *testing.T) *fixture {
	t.Helper()
	return startWith(t, filepath.Join("..", "..", "scripts"))
}

// startWith starts a listener whose policy runs the scripts in scripts;
// configure, if any, change its options.
func startWith(t *testing.T, scripts string, configure ...func(*bouncein.Options)) *fixture {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	pol, err := luart.New(luart.Options{ScriptsDir: scripts, RulesDir: filepath.Join("..", "..", "rules")})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: signer, spool: sp, queue: &queued{}, events: &eventtest.Recorder{}, list: suppress.New(sp, nil)}
	bus := &event.Bus{}
	bus.Subscribe(f.events)
	opts := bouncein.Options{Hostname: "mta.platform.example", VERP: signer, Spool: sp,
		Queue: f.queue, Policy: pol, Events: bus, FBLAddresses: []string{fblAddress}, Suppress: f.list}
	for _, c := range configure {
		c(&opts)
	}
	f.srv, err = bouncein.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
	})
	f.addr = ln.Addr().String()

	h, body, err := message.Parse([]byte("From: Dott. Rossi <" + author + ">\r\nSubject: Ricetta\r\n\r\nHello.\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Header: h, Body: body, Tenant: "ricette", Class: message.Personal, Received: time.Now()}
	m.Sender, m.Author = "bounces@bounces.platform.example", author
	m.Recipients = []message.Recipient{{Addr: "p1@patients.example"}, {Addr: "p2@patients.example"}}
	meta, _, err := sp.Put(m, m.Received)
	if err != nil {
		t.Fatal(err)
	}
	f.msgID = meta.ID
	return f
}

// verpFor returns the VERP address of recipient index of the fixture's
// message.
func (f *fixture) verpFor(index int) string {
	return f.signer.Address("bounces@bounces.platform.example", f.msgID, index)
}

// send delivers raw to rcpt from the null sender and returns the error of
// RCPT TO or DATA.
func (f *fixture) send(t *testing.T, rcpt string, raw []byte) error {
	t.Helper()
	c := f.dial(t, "mx.patients.example")
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// dial opens a session with the listener, greeted as helo; it is closed
// when the test ends.
func (f *fixture) dial(t *testing.T, helo string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(helo); err != nil {
		t.Fatal(err)
	}
	return c
}

// remoteDSN is a provider's bounce about rcpt, sent to the VERP address.
func remoteDSN(t *testing.T, to, rcpt string) []byte {
	t.Helper()
	raw, err := dsn.Build(&dsn.Report{
		ReportingMTA: "mx.patients.example", To: to, Ret: message.RetHdrs, Now: time.Now(),
		Original: []byte("From: " + author + "\r\nSubject: Ricetta\r\n\r\n"),
		Recipients: []dsn.Recipient{{Addr: rcpt, Action: dsn.Failed, RemoteMTA: "mbox.patients.example",
			Diagnostic: reply.New(550, "5.1.1", "<"+rcpt+">: user unknown")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestBounceIsForwardedToTheAuthor(t *testing.T) {
	f := start(t)
	to := f.verpFor(1)
	if err := f.send(t, to, remoteDSN(t, to, "p2@patients.example")); err != nil {
		t.Fatalf("bounce refused: %v", err)
	}
	b := f.events.Of(event.Bounced)
	if len(b) != 1 || b[0].Recipient != "p2@patients.example" || b[0].Tenant != "ricette" || b[0].Category != "userunknown" || b[0].MsgID != f.msgID {
		t.Fatalf("bounced events: %+v", b)
	}
	qs := f.queue.list()
	if len(qs) != 1 {
		t.Fatalf("%d messages queued, want the DSN to the author", len(qs))
	}
	if qs[0].Sender != "" {
		t.Errorf("forwarded DSN from %q, want the null sender", qs[0].Sender)
	}
	content, err := f.spool.Content(qs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"To: <" + author + ">", "sent on your behalf", "Final-Recipient: rfc822; p2@patients.example",
		"Action: failed", "Status: 5.1.1", "message/rfc822"} {
		if !strings.Contains(string(content), want) {
			t.Errorf("forwarded DSN lacks %q:\n%s", want, content)
		}
	}
	if c := f.srv.Counts(); c.Bounces != 1 || c.Forwarded != 1 || c.Messages != 1 {
		t.Errorf("counts %+v", c)
	}
	// The address was suppressed for the tenant before the 250.
	e, ok, err := f.list.Lookup("ricette", "p2@patients.example")
	if err != nil || !ok || e.Category != "userunknown" || e.Source != suppress.SourceBounce {
		t.Errorf("suppression entry %+v, found %v, err %v", e, ok, err)
	}
}

// TestOnBounceDecidesSuppression: on_bounce's hard, not the category,
// decides whether the bounced address is suppressed. This policy calls
// an unknown user soft (the address may come back) and a full mailbox
// hard (abandoned).
func TestOnBounceDecidesSuppression(t *testing.T) {
	scripts := t.TempDir()
	if err := os.CopyFS(scripts, os.DirFS(filepath.Join("..", "..", "scripts"))); err != nil {
		t.Fatal(err)
	}
	inverted := `local bounces = require "bounces"
function on_bounce(report)
  local v = bounces.classify(report)
  return { category = v.category, hard = v.category == "mailboxfull" }
end
`
	if err := os.WriteFile(filepath.Join(scripts, "on_bounce.lua"), []byte(inverted), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status, text, category string
		hard                   bool
	}{
		{"5.1.1", "user unknown", "userunknown", false},
		{"5.2.2", "mailbox full", "mailboxfull", true},
	}
	for _, tt := range tests {
		t.Run(tt.category, func(t *testing.T) {
			f := startWith(t, scripts)
			to := f.verpFor(1)
			raw, err := dsn.Build(&dsn.Report{
				ReportingMTA: "mx.patients.example", To: to, Ret: message.RetHdrs, Now: time.Now(),
				Original: []byte("From: " + author + "\r\nSubject: Ricetta\r\n\r\n"),
				Recipients: []dsn.Recipient{{Addr: "p2@patients.example", Action: dsn.Failed,
					Diagnostic: reply.New(550, tt.status, tt.text)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.send(t, to, raw); err != nil {
				t.Fatalf("bounce refused: %v", err)
			}
			b := f.events.Of(event.Bounced)
			if len(b) != 1 || string(b[0].Category) != tt.category || b[0].Hard != tt.hard {
				t.Fatalf("bounced events %+v, want one %s with hard = %v", b, tt.category, tt.hard)
			}
			_, found, err := f.list.Lookup("ricette", "p2@patients.example")
			if err != nil || found != tt.hard {
				t.Errorf("suppressed = %v (err %v), want %v", found, err, tt.hard)
			}
			if n := len(f.queue.list()); n != 1 {
				t.Errorf("%d DSNs queued to the author, want 1 either way", n)
			}
		})
	}
}

// TestBounceForwardedOnce: the same bounce named twice in one transaction,
// or sent again later, reaches the author once.
func TestBounceForwardedOnce(t *testing.T) {
	f := start(t)
	to := f.verpFor(0)
	raw := remoteDSN(t, to, "p1@patients.example")
	c := f.dial(t, "mx.patients.example")
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := c.Rcpt(to, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// An operator takes the address off the list; the same bounce sent
	// again does not put it back.
	if _, err := f.list.Remove("ricette", "p1@patients.example"); err != nil {
		t.Fatal(err)
	}
	if err := f.send(t, to, raw); err != nil {
		t.Fatalf("the bounce again: %v", err)
	}
	if _, found, err := f.list.Lookup("ricette", "p1@patients.example"); err != nil || found {
		t.Errorf("a replayed bounce suppressed the address again (found %v, err %v)", found, err)
	}
	if n := len(f.queue.list()); n != 1 {
		t.Errorf("%d DSNs queued to the author, want 1", n)
	}
	if n := len(f.events.Of(event.Bounced)); n != 1 {
		t.Errorf("%d bounced events, want 1", n)
	}
}

// TestScannerIsDisconnected: a peer trying address after address is
// told to go away.
func TestScannerIsDisconnected(t *testing.T) {
	f := start(t)
	c := f.dial(t, "scanner.example")
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	for i := range 20 {
		err := c.Rcpt(fmt.Sprintf("user%d@bounces.platform.example", i), nil)
		if !errors.As(err, &se) {
			t.Fatalf("recipient %d: %v, want a refusal", i, err)
		}
		if se.Code == 421 {
			break
		}
	}
	if se.Code != 421 {
		t.Fatalf("after 20 invalid recipients: %v, want 421", se)
	}
}

// TestShutdownDoesNotWaitForIdleSessions: an idle session neither holds
// up the shutdown nor outlives it.
func TestShutdownDoesNotWaitForIdleSessions(t *testing.T) {
	f := start(t)
	c := f.dial(t, "idle.example")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with an idle session: %v", err)
	}
	if err := c.Mail("", nil); err == nil {
		t.Error("the idle session still takes commands after Shutdown")
	}
}

func TestRefusesForgedAndForeignAddresses(t *testing.T) {
	f := start(t)
	other, err := verp.New([]byte("a different key of enough length"))
	if err != nil {
		t.Fatal(err)
	}
	good := f.verpFor(0)
	at := strings.LastIndexByte(good, '@')
	tests := []struct {
		name, rcpt string
		code       int
		status     smtp.EnhancedCode
	}{
		{"signed with another key", other.Address("bounces@bounces.platform.example", f.msgID, 0), 550, smtp.EnhancedCode{5, 7, 1}},
		{"recipient index changed", strings.Replace(good, "-0-", "-1-", 1), 550, smtp.EnhancedCode{5, 7, 1}},
		{"tag cut short", good[:at-2] + good[at:], 550, smtp.EnhancedCode{5, 7, 1}},
		{"not a bounce address", "abuse@bounces.platform.example", 550, smtp.EnhancedCode{5, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.send(t, tt.rcpt, remoteDSN(t, tt.rcpt, "p1@patients.example"))
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != tt.code || se.EnhancedCode != tt.status {
				t.Fatalf("RCPT %s: %v, want %d %v", tt.rcpt, err, tt.code, tt.status)
			}
		})
	}
	if n := len(f.events.Of(event.Bounced)) + len(f.events.Of(event.Complained)); n != 0 {
		t.Errorf("forged bounces produced %d bounced/complained events", n)
	}
	if n := len(f.queue.list()); n != 0 {
		t.Errorf("forged bounces queued %d messages", n)
	}
	if c := f.srv.Counts(); c.Forged != 3 || c.NotVERP != 1 {
		t.Errorf("counts %+v, want 3 forged and 1 not VERP", c)
	}
}

func TestComplaintIsRecordedNotForwarded(t *testing.T) {
	f := start(t)
	raw, err := os.ReadFile(filepath.Join("..", "bounce", "testdata", "arf.eml"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is a replay: recorded once
		if err := f.send(t, f.verpFor(0), raw); err != nil {
			t.Fatalf("report refused: %v", err)
		}
	}
	c := f.events.Of(event.Complained)
	if len(c) != 1 || c[0].Recipient != "p1@patients.example" || c[0].Tenant != "ricette" {
		t.Fatalf("complained events: %+v", c)
	}
	if n := len(f.queue.list()); n != 0 {
		t.Errorf("a complaint queued %d messages; reports are not forwarded", n)
	}
}

func TestNothingToDo(t *testing.T) {
	tests := []struct {
		name string
		raw  func(f *fixture) []byte
		rcpt func(f *fixture) string
	}{
		{"not a bounce", func(*fixture) []byte {
			return []byte("From: someone@patients.example\r\nSubject: thanks\r\n\r\nThank you, doctor.\r\n")
		}, func(f *fixture) string { return f.verpFor(0) }},
		{"vacation", func(*fixture) []byte {
			raw, _ := os.ReadFile(filepath.Join("..", "bounce", "testdata", "vacation.eml"))
			return raw
		}, func(f *fixture) string { return f.verpFor(0) }},
		{"reference no longer kept", func(*fixture) []byte {
			return remoteDSN(t, "x@y", "p1@patients.example")
		}, func(f *fixture) string {
			return f.signer.Address("bounces@bounces.platform.example", spool.NewID(), 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t)
			if err := f.send(t, tt.rcpt(f), tt.raw(f)); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if n := len(f.events.Of(event.Bounced)) + len(f.queue.list()); n != 0 {
				t.Errorf("%d bounced events and forwarded DSNs, want none", n)
			}
			if c := f.srv.Counts(); c.Ignored != 1 {
				t.Errorf("counts %+v, want 1 ignored", c)
			}
		})
	}
}

// arfQuoting is a provider's feedback report about a message whose
// envelope sender was mailFrom.
func arfQuoting(mailFrom string) []byte {
	return []byte("From: feedbackloop@provider.example\r\n" +
		"To: " + fblAddress + "\r\n" +
		"Subject: Complaint\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n" +
		"--b\r\nContent-Type: message/feedback-report\r\n\r\n" +
		"Feedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\n" +
		"Original-Mail-From: <" + mailFrom + ">\r\nOriginal-Rcpt-To: <p2@patients.example>\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n" +
		"Return-Path: <" + mailFrom + ">\r\nFrom: " + author + "\r\nSubject: Ricetta\r\n" +
		"--b--\r\n")
}

func TestFeedbackLoopAddress(t *testing.T) {
	other, err := verp.New([]byte("a different key of enough length"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		raw            func(f *fixture) []byte
		complaints     int
		unattributed   int64
		wantComplained string
	}{
		{"quotes our VERP address", func(f *fixture) []byte { return arfQuoting(f.verpFor(1)) }, 1, 0, "p2@patients.example"},
		{"quotes a forged one", func(f *fixture) []byte {
			return arfQuoting(other.Address("bounces@bounces.platform.example", f.msgID, 1))
		}, 0, 1, ""},
		{"quotes none", func(*fixture) []byte { return arfQuoting("news@shop.example") }, 0, 1, ""},
		{"a bounce quoting our VERP address, not a report", func(f *fixture) []byte {
			return append([]byte("Return-Path: <"+f.verpFor(1)+">\r\n"), remoteDSN(t, fblAddress, "p2@patients.example")...)
		}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t)
			if err := f.send(t, strings.ToUpper(fblAddress), tt.raw(f)); err != nil {
				t.Fatalf("report refused: %v", err)
			}
			c := f.events.Of(event.Complained)
			if len(c) != tt.complaints {
				t.Fatalf("%d complained events, want %d: %+v", len(c), tt.complaints, c)
			}
			if tt.complaints > 0 && (c[0].Recipient != tt.wantComplained || c[0].Tenant != "ricette") {
				t.Errorf("complained event %+v, want %s of ricette", c[0], tt.wantComplained)
			}
			if n := len(f.events.Of(event.Bounced)) + len(f.queue.list()); n != 0 {
				t.Errorf("%d bounced events and forwarded DSNs, want none", n)
			}
			if got := f.srv.Counts().Unattributed; got != tt.unattributed {
				t.Errorf("unattributed %d, want %d", got, tt.unattributed)
			}
		})
	}
}
