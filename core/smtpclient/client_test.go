package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"corriere/core/reply"
)

// testOptions are short timeouts, so that a failing test fails fast.
func testOptions() Options {
	return Options{
		Helo:            "client.test",
		ConnectTimeout:  5 * time.Second,
		GreetingTimeout: 5 * time.Second,
		CommandTimeout:  5 * time.Second,
		DataTimeout:     5 * time.Second,
	}
}

// dialScript starts script and dials it.
func dialScript(t *testing.T, script string, lockstep bool, opts Options) (*scriptServer, *Client) {
	t.Helper()
	s := startScript(t, script, lockstep)
	c, err := Dial(context.Background(), s.addr, "mx.test", opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// wantReply fails unless got is a reply with the given code, enhanced status
// ("" for none) and text.
func wantReply(t *testing.T, what string, got *reply.Reply, code int, status, text string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no reply, want %d %s %s", what, code, status, text)
		return
	}
	if got.Code != code || got.Status.String() != status || got.Text != text {
		t.Errorf("%s: reply %d %q %q, want %d %q %q", what, got.Code, got.Status, got.Text, code, status, text)
	}
}

// stageError returns err as an *Error, failing the test unless it is one for
// stage.
func stageError(t *testing.T, err error, stage string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Stage != stage {
		t.Fatalf("error %v at stage %q, want %q", err, e.Stage, stage)
	}
	return e
}

const ehloPlain = `
< 220 mx.test ESMTP
> EHLO client.test
< 250-mx.test
< 250 8BITMIME`

const ehloPipelining = `
< 220 mx.test ESMTP
> EHLO client.test
< 250-mx.test
< 250-PIPELINING
< 250 ENHANCEDSTATUSCODES`

const quit = `
> QUIT
< 221 2.0.0 bye`

func TestDialFailures(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		mode      TLSMode
		stage     string
		code      int // 0: no reply expected
		status    string
		text      string
		temporary bool
		is        error
		msg       string // a part of the error message
	}{
		{name: "greeting 421", script: "< 421 4.3.2 mx.test shutting down\nhang",
			stage: StageGreeting, code: 421, status: "4.3.2", text: "mx.test shutting down", temporary: true},
		{name: "greeting 554 multi-line", script: `
			< 554-5.7.1 Service unavailable; client host [127.0.0.1] blocked
			< 554 5.7.1 listed at zen.spamhaus.org
			> QUIT
			close`,
			stage: StageGreeting, code: 554, status: "5.7.1",
			text: "Service unavailable; client host [127.0.0.1] blocked\nlisted at zen.spamhaus.org"},
		{name: "closed before greeting", script: "close", stage: StageGreeting, temporary: true},
		{name: "garbage greeting", script: "< hello there\nhang", stage: StageGreeting, temporary: true},
		{name: "overlong greeting", script: "< 220 " + strings.Repeat("x", maxReplyLine) + "\nhang",
			stage: StageGreeting, temporary: true},
		{name: "endless greeting", script: strings.Repeat("< 220-more\n", maxReplyLines+1) + "hang",
			stage: StageGreeting, temporary: true},
		{name: "EHLO 451", script: "< 220 mx.test\n> EHLO client.test\n< 451 4.3.0 try later\nhang",
			stage: StageHelo, code: 451, status: "4.3.0", text: "try later", temporary: true},
		{name: "EHLO 421", script: "< 220 mx.test\n> EHLO client.test\n< 421 4.7.0 go away\nhang",
			stage: StageHelo, code: 421, status: "4.7.0", text: "go away", temporary: true},
		{name: "EHLO and HELO 550", script: `
			< 220 mx.test
			> EHLO client.test
			< 500 5.5.1 what
			> HELO client.test
			< 550 5.7.1 not you
			hang`,
			stage: StageHelo, code: 550, status: "5.7.1", text: "not you"},
		{name: "TLS required, not offered", script: ehloPipelining + "\nhang", mode: TLSRequired,
			stage: StageStartTLS, temporary: true, is: ErrTLSUnavailable},
		{name: "TLS required, refused", script: `
			< 220 mx.test
			> EHLO client.test
			< 250-mx.test
			< 250 STARTTLS
			> STARTTLS
			< 554 5.7.0 no TLS for you
			hang`, mode: TLSRequired,
			stage: StageStartTLS, code: 554, status: "5.7.0", text: "no TLS for you", temporary: true, is: ErrTLSUnavailable},
		{name: "data injected after STARTTLS 220", script: `
			< 220 mx.test
			> EHLO client.test
			< 250-mx.test
			< 250 STARTTLS
			> STARTTLS
			< 220 go ahead
			< 250 injected
			hang`,
			stage: StageStartTLS, temporary: true, is: ErrTLSFailed, msg: "after its 220 reply"},
		{name: "not a TLS server", script: `
			< 220 mx.test
			> EHLO client.test
			< 250-mx.test
			< 250 STARTTLS
			> STARTTLS
			< 220 go ahead
			read
			< 500 this is not TLS
			hang`,
			stage: StageStartTLS, temporary: true, is: ErrTLSFailed, msg: "does not look like a TLS handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScript(t, tt.script, false)
			opts := testOptions()
			opts.TLSMode = tt.mode
			c, err := Dial(context.Background(), s.addr, "mx.test", opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			e := stageError(t, err, tt.stage)
			if tt.code != 0 {
				wantReply(t, "error reply", e.Reply, tt.code, tt.status, tt.text)
				if reply.From(err) != e.Reply {
					t.Errorf("reply.From does not find the reply in %v", err)
				}
			} else if e.Reply != nil {
				t.Errorf("error carries reply %v, want none", e.Reply)
			}
			if e.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v, want %v (%v)", e.Temporary(), tt.temporary, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			s.check(t)
		})
	}
}

func TestDialConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(context.Background(), addr, "", testOptions())
	e := stageError(t, err, StageConnect)
	if !e.Temporary() || e.Reply != nil {
		t.Errorf("connect error %v: Temporary %v, Reply %v", err, e.Temporary(), e.Reply)
	}
}

func TestDialInvalidOptions(t *testing.T) {
	for _, opts := range []Options{
		{LocalAddr: "not-an-ip"},
		{Helo: "two words"},
		{TLSMode: 7},
		{CommandTimeout: -time.Second},
	} {
		if _, err := Dial(context.Background(), "127.0.0.1:1", "", opts); err == nil {
			t.Errorf("Dial with %+v succeeded", opts)
		}
	}
}

func TestStartTLSRefusedOpportunistic(t *testing.T) {
	s, c := dialScript(t, `
		< 220 mx.test
		> EHLO client.test
		< 250-mx.test
		< 250-PIPELINING
		< 250 STARTTLS
		> STARTTLS
		< 454 4.7.0 TLS not available
		`+quit, false, testOptions())
	if _, ok := c.TLS(); ok {
		t.Error("TLS() reports a TLS session")
	}
	if _, ok := c.Extension("pipelining"); !ok {
		t.Error("extensions from the clear EHLO were lost")
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.check(t)
}

func TestSendLockstep(t *testing.T) {
	s, c := dialScript(t, ehloPlain+`
		> MAIL FROM:<a@example.org> BODY=8BITMIME
		< 250 2.1.0 ok
		> RCPT TO:<b@example.net>
		< 250 2.1.5 ok
		> RCPT TO:<c@example.net>
		< 550-5.1.1 The email account that you tried to reach does not exist.
		< 550 5.1.1 Please try double-checking the recipient's email address.
		> RCPT TO:<d@example.net>
		< 250 ok
		> DATA
		< 354 go ahead
		data
		< 250 2.0.0 queued as 1234
		`+quit, true, testOptions())
	env := Envelope{From: "a@example.org", EightBit: true, Rcpts: []Rcpt{
		{Addr: "b@example.net", Notify: "NEVER"}, {Addr: "c@example.net"}, {Addr: "d@example.net"}}}
	res, err := c.Send(context.Background(), env, []byte("Subject: hi\n\n.leading dot\nbare\rcr\r\nend"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantReply(t, "MAIL", res.Mail, 250, "2.1.0", "ok")
	wantReply(t, "RCPT 0", res.Rcpts[0], 250, "2.1.5", "ok")
	wantReply(t, "RCPT 1", res.Rcpts[1], 550, "5.1.1",
		"The email account that you tried to reach does not exist.\nPlease try double-checking the recipient's email address.")
	wantReply(t, "RCPT 2", res.Rcpts[2], 250, "", "ok")
	wantReply(t, "DATA", res.Data, 250, "2.0.0", "queued as 1234")
	for i, want := range []*reply.Reply{res.Data, res.Rcpts[1], res.Data} {
		if got := res.Outcome(i); got != want {
			t.Errorf("Outcome(%d) = %v, want %v", i, got, want)
		}
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	contents := s.check(t)
	want := "Subject: hi\r\n\r\n..leading dot\r\nbare\r\ncr\r\nend\r\n"
	if len(contents) != 1 || contents[0] != want {
		t.Errorf("server received %q, want [%q]", contents, want)
	}
}

func TestSendPipelined(t *testing.T) {
	content := "Subject: hi\r\n\r\nbody\r\n"
	s, c := dialScript(t, `
		< 220 mx.test ESMTP
		> EHLO client.test
		< 250-mx.test
		< 250-PIPELINING
		< 250 SIZE 10000
		> MAIL FROM:<a@example.org> SIZE=`+fmt.Sprint(len(content))+`
		>+ RCPT TO:<b@example.net>
		>+ RCPT TO:<c@example.net>
		>+ DATA
		< 250 2.1.0 ok
		< 250 2.1.5 ok
		< 451 4.2.1 mailbox busy, try later
		< 354 go ahead
		data
		< 250 2.0.0 queued
		`+quit, false, testOptions())
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}, {Addr: "c@example.net"}}}
	res, err := c.Send(context.Background(), env, []byte(content))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantReply(t, "RCPT 1", res.Rcpts[1], 451, "4.2.1", "mailbox busy, try later")
	wantReply(t, "DATA", res.Data, 250, "2.0.0", "queued")
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	if got := s.check(t); len(got) != 1 || got[0] != content {
		t.Errorf("server received %q, want [%q]", got, content)
	}
}

func TestSendRefusedTransactions(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		lockstep bool
		check    func(t *testing.T, res *Result)
	}{
		{name: "pipelined, all recipients rejected, DATA 354", script: ehloPipelining + `
			> MAIL FROM:<a@example.org>
			>+ RCPT TO:<b@example.net>
			>+ RCPT TO:<c@example.net>
			>+ DATA
			< 250 2.1.0 ok
			< 550 5.1.1 no such user
			< 550 5.1.1 no such user
			< 354 go ahead
			> .
			< 554 5.5.1 no valid recipients
			> RSET
			< 250 2.0.0 ok`,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "RCPT 1", res.Rcpts[1], 550, "5.1.1", "no such user")
				if res.Data != nil {
					t.Errorf("Data = %v, want nil", res.Data)
				}
				wantReply(t, "Outcome(0)", res.Outcome(0), 550, "5.1.1", "no such user")
			}},
		{name: "pipelined, MAIL rejected", script: ehloPipelining + `
			> MAIL FROM:<a@example.org>
			>+ RCPT TO:<b@example.net>
			>+ RCPT TO:<c@example.net>
			>+ DATA
			< 553 5.7.1 sender rejected
			< 503 5.5.1 need MAIL first
			< 503 5.5.1 need MAIL first
			< 503 5.5.1 need MAIL first
			> RSET
			< 250 2.0.0 ok`,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "Outcome(1)", res.Outcome(1), 553, "5.7.1", "sender rejected")
				wantReply(t, "RCPT 1", res.Rcpts[1], 503, "5.5.1", "need MAIL first")
				if res.Data != nil {
					t.Errorf("Data = %v, want nil", res.Data)
				}
			}},
		{name: "pipelined, DATA rejected", script: ehloPipelining + `
			> MAIL FROM:<a@example.org>
			>+ RCPT TO:<b@example.net>
			>+ RCPT TO:<c@example.net>
			>+ DATA
			< 250 2.1.0 ok
			< 250 2.1.5 ok
			< 250 2.1.5 ok
			< 451 4.3.0 queue full
			> RSET
			< 250 2.0.0 ok`,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "Outcome(1)", res.Outcome(1), 451, "4.3.0", "queue full")
			}},
		{name: "lockstep, MAIL rejected", lockstep: true, script: ehloPlain + `
			> MAIL FROM:<a@example.org>
			< 451 4.7.1 greylisted
			> RSET
			< 250 ok`,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "Outcome(0)", res.Outcome(0), 451, "4.7.1", "greylisted")
				if res.Rcpts[0] != nil || res.Data != nil {
					t.Errorf("RCPT or DATA answered: %+v", res)
				}
			}},
		{name: "lockstep, all recipients rejected", lockstep: true, script: ehloPlain + `
			> MAIL FROM:<a@example.org>
			< 250 ok
			> RCPT TO:<b@example.net>
			< 550 5.1.1 no
			> RCPT TO:<c@example.net>
			< 550 5.1.1 no
			> RSET
			< 250 ok`,
			check: func(t *testing.T, res *Result) {
				if res.Data != nil {
					t.Errorf("Data = %v, want nil", res.Data)
				}
			}},
	}
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}, {Addr: "c@example.net"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// After the refused transaction the connection carries another.
			next := `
				> MAIL FROM:<a@example.org>
				>+ RCPT TO:<b@example.net>
				>+ RCPT TO:<c@example.net>
				>+ DATA
				< 250 ok
				< 250 ok
				< 250 ok
				< 354 go ahead`
			if tt.lockstep {
				next = `
					> MAIL FROM:<a@example.org>
					< 250 ok
					> RCPT TO:<b@example.net>
					< 250 ok
					> RCPT TO:<c@example.net>
					< 250 ok
					> DATA
					< 354 go ahead`
			}
			s, c := dialScript(t, tt.script+next+"\ndata\n< 250 2.0.0 queued"+quit, tt.lockstep, testOptions())
			res, err := c.Send(context.Background(), env, []byte("x\r\n"))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			tt.check(t, res)
			if c.Broken() {
				t.Fatal("client broken after a refused transaction")
			}
			res, err = c.Send(context.Background(), env, []byte("x\r\n"))
			if err != nil || res.Outcome(0) == nil || !res.Outcome(0).Success() {
				t.Errorf("second Send: %v, %+v", err, res)
			}
			if err := c.Quit(context.Background()); err != nil {
				t.Errorf("Quit: %v", err)
			}
			s.check(t)
		})
	}
}

func TestSendConnectionFailures(t *testing.T) {
	pipelined := ehloPipelining + `
		> MAIL FROM:<a@example.org>
		>+ RCPT TO:<b@example.net>
		>+ DATA`
	tests := []struct {
		name    string
		script  string
		timeout time.Duration // CommandTimeout
		cancel  bool          // cancel the context while waiting
		stage   string
		code    int // 0: no reply expected
		is      error
		check   func(t *testing.T, res *Result)
	}{
		{name: "421 to RCPT", script: pipelined + `
			< 250 ok
			< 421 4.7.0 too many errors, closing
			close`,
			stage: StageRcpt, code: 421,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "Outcome(0)", res.Outcome(0), 421, "4.7.0", "too many errors, closing")
			}},
		{name: "dropped after 354", script: pipelined + `
			< 250 ok
			< 250 ok
			< 354 go ahead
			close`,
			stage: StageData,
			check: func(t *testing.T, res *Result) {
				if res.Outcome(0) != nil {
					t.Errorf("Outcome(0) = %v, want nil (unknown)", res.Outcome(0))
				}
			}},
		{name: "dropped during content", script: pipelined + `
			< 250 ok
			< 250 ok
			< 354 go ahead
			read
			close`,
			stage: StageData},
		{name: "421 after content", script: pipelined + `
			< 250 ok
			< 250 ok
			< 354 go ahead
			data
			< 421 4.3.0 out of disk
			close`,
			stage: StageData, code: 421,
			check: func(t *testing.T, res *Result) {
				wantReply(t, "Outcome(0)", res.Outcome(0), 421, "4.3.0", "out of disk")
			}},
		{name: "unparsable reply", script: pipelined + `
			< 250 ok
			< what?
			hang`,
			stage: StageRcpt},
		{name: "slow server", script: pipelined + "\nhang", timeout: 100 * time.Millisecond,
			stage: StageMail, is: os.ErrDeadlineExceeded},
		{name: "cancelled context", script: pipelined + "\nhang", cancel: true,
			stage: StageMail, is: context.Canceled},
	}
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}
	content := []byte(strings.Repeat("0123456789abcdef\r\n", 1<<14))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			if tt.timeout != 0 {
				opts.CommandTimeout = tt.timeout
			}
			s, c := dialScript(t, tt.script, false, opts)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			res, err := c.Send(ctx, env, content)
			if res == nil {
				t.Fatal("Send returned a nil Result")
			}
			e := stageError(t, err, tt.stage)
			if (e.Reply != nil) != (tt.code != 0) || e.Reply != nil && e.Reply.Code != tt.code {
				t.Errorf("error reply %v, want code %d", e.Reply, tt.code)
			}
			if !e.Temporary() {
				t.Errorf("error %v is not temporary", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !c.Broken() {
				t.Error("client not broken")
			}
			if tt.check != nil {
				tt.check(t, res)
			}
			if _, err := c.Send(ctx, env, content); !errors.Is(err, ErrBroken) {
				t.Errorf("Send on a broken client: %v, want ErrBroken", err)
			}
			c.Close()
			s.check(t)
		})
	}
}

func TestSendRefusedByClient(t *testing.T) {
	s, c := dialScript(t, `
		< 220 mx.test
		> EHLO client.test
		< 250-mx.test
		< 250 SIZE 100`+quit, false, testOptions())
	tests := []struct {
		name    string
		env     Envelope
		content string
		code    int
		status  string
	}{
		{name: "UTF-8 headers", env: Envelope{From: "a@example.org", UTF8: true, Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			code: 550, status: "5.6.9"},
		{name: "UTF-8 address", env: Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "jörg@example.net"}}},
			code: 553, status: "5.6.7"},
		{name: "too big", env: Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			content: strings.Repeat("x", 101), code: 552, status: "5.3.4"},
		{name: "announced too big", env: Envelope{From: "a@example.org", Size: 101, Rcpts: []Rcpt{{Addr: "b@example.net"}}},
			code: 552, status: "5.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Send(context.Background(), tt.env, []byte(tt.content))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Mail == nil || res.Mail.Code != tt.code || res.Mail.Status.String() != tt.status {
				t.Errorf("Mail = %v, want %d %s", res.Mail, tt.code, tt.status)
			}
			if res.Outcome(0) != res.Mail {
				t.Errorf("Outcome(0) = %v, want the MAIL reply", res.Outcome(0))
			}
		})
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.check(t)
}

func TestSendInvalidEnvelope(t *testing.T) {
	s, c := dialScript(t, ehloPipelining+quit, false, testOptions())
	for _, env := range []Envelope{
		{From: "a@example.org"},
		{From: "a@example.org\r\nRSET", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: ""}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net>\r\nDATA"}}},
		{From: "a@example.org", Ret: "BODY", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", EnvID: "é", Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", EnvID: strings.Repeat("x", 101), Rcpts: []Rcpt{{Addr: "b@example.net"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", Notify: "NEVER,SUCCESS"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", Notify: "SUCCESS,"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", ORCPT: "b@example.net"}}},
		{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net", ORCPT: "rfc 822;b@example.net"}}},
	} {
		if _, err := c.Send(context.Background(), env, nil); err == nil {
			t.Errorf("Send(%+v) succeeded", env)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := Envelope{From: "a@example.org", Rcpts: []Rcpt{{Addr: "b@example.net"}}}
	if _, err := c.Send(ctx, env, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with an ended context: %v, want context.Canceled", err)
	}
	if c.Broken() {
		t.Error("client broken by invalid envelopes or an ended context")
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.check(t)
}

func TestHeloFallback(t *testing.T) {
	s, c := dialScript(t, `
		< 220 old.mx.test SMTP
		> EHLO client.test
		< 502 5.5.2 command not recognized
		> HELO client.test
		< 250 old.mx.test
		> MAIL FROM:<a@example.org>
		< 250 ok
		> RCPT TO:<b@example.net>
		< 250 ok
		> DATA
		< 354 go ahead
		data
		< 250 ok`+quit, true, testOptions())
	if _, ok := c.Extension("8BITMIME"); ok {
		t.Error("extension reported after HELO")
	}
	env := Envelope{From: "a@example.org", EightBit: true, Rcpts: []Rcpt{{Addr: "b@example.net", Notify: "FAILURE"}}}
	res, err := c.Send(context.Background(), env, []byte("x"))
	if err != nil || res.Outcome(0) == nil || !res.Outcome(0).Success() {
		t.Errorf("Send: %v, %+v", err, res)
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	if got := s.check(t); len(got) != 1 || got[0] != "x\r\n" {
		t.Errorf("server received %q", got)
	}
}

func TestNoopReset(t *testing.T) {
	s, c := dialScript(t, ehloPipelining+`
		> NOOP
		< 250 2.0.0 ok
		> RSET
		< 250 2.0.0 ok
		> NOOP
		< 502 5.5.1 no NOOP today
		> RSET
		< 500 5.5.1 what
		close`, false, testOptions())
	ctx := context.Background()
	if err := c.Noop(ctx); err != nil {
		t.Errorf("Noop: %v", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Errorf("Reset: %v", err)
	}
	if err := c.Noop(ctx); err == nil || c.Broken() {
		t.Errorf("refused Noop: %v, broken %v; want an error and a usable client", err, c.Broken())
	}
	if err := c.Reset(ctx); err == nil || !c.Broken() {
		t.Errorf("refused Reset: %v, broken %v; want an error and a broken client", err, c.Broken())
	}
	if err := c.Noop(ctx); !errors.Is(err, ErrBroken) {
		t.Errorf("Noop on a broken client: %v, want ErrBroken", err)
	}
	s.check(t)
}
