package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/extension"
)

// slowCheck is a recipient check that is slow for slow@ recipients: it
// waits for its context to end or, when ignoreCtx, for release, which the
// test closes at its end.
type slowCheck struct {
	ignoreCtx bool
	release   chan struct{}
	// deadlines receives, for every other recipient, whether the check's
	// context had a deadline and how far away it was.
	deadlines chan time.Duration
}

func (c *slowCheck) CheckRecipient(ctx context.Context, _, rcpt string) error {
	if !strings.HasPrefix(rcpt, "slow@") {
		d := time.Duration(-1)
		if dl, ok := ctx.Deadline(); ok {
			d = time.Until(dl)
		}
		c.deadlines <- d
		return nil
	}
	if c.ignoreCtx {
		<-c.release
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.release:
		return nil
	}
}

// TestSlowRecipientCheckGetsTemporaryReply: a recipient check that outlives
// Options.CheckTimeout costs its recipient a 451 4.3.0, counted and emitted
// as a rejection, and the session goes on, whether the check honours its
// context or ignores it. Every check runs with a deadline.
func TestSlowRecipientCheckGetsTemporaryReply(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name      string
		ignoreCtx bool
	}{
		{"honours its context", false},
		{"ignores its context", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := &slowCheck{ignoreCtx: tc.ignoreCtx, release: make(chan struct{}), deadlines: make(chan time.Duration, 10)}
			log := &eventtest.Recorder{}
			s, addr, _, col := startServer(t, serverSetup{
				insecureAuth: true, checks: []extension.RecipientCheck{check}, events: log.Bus(),
				tune: func(o *Options) { o.CheckTimeout = timeout },
			})
			t.Cleanup(func() { close(check.release) })
			runDialogue(t, addr, dialogue(authAcme, []string{
				"c -> MAIL FROM:<news@acme.example>", "c <- 250",
				"c -> RCPT TO:<slow@dest.example>", "c <- 451 4.3.0",
				"c -> RCPT TO:<ok@dest.example>", "c <- 250",
				"c -> DATA", "c <- 354", "c -> Subject: hi", "c ->", "c -> body", "c -> .", "c <- 250",
				"c -> QUIT", "c <- 221",
			}))
			if n := s.Rejections()["recipient_check_timeout"]; n != 1 {
				t.Errorf("recipient_check_timeout = %d, want 1", n)
			}
			rej := log.Of(event.Rejected)
			if len(rej) != 1 || rej[0].Reason != "recipient_check_timeout" || !strings.HasPrefix(rej[0].Reply, "451 4.3.0") {
				t.Errorf("rejected events = %+v; want one recipient_check_timeout with 451 4.3.0", rej)
			}
			if len(col.ents) != 1 || len(col.ents[0]) != 1 || col.ents[0][0].Rcpt.Addr != "ok@dest.example" {
				t.Errorf("queued %+v; want one message to ok@dest.example", col.ents)
			}
			if d := <-check.deadlines; d <= 0 || d > timeout {
				t.Errorf("the check of ok@ had %v left before its deadline; want a deadline within %v", d, timeout)
			}
		})
	}
}

// BenchmarkCheckRecipient measures what the deadline costs a recipient
// whose check answers at once: a timer, a goroutine and a channel.
func BenchmarkCheckRecipient(b *testing.B) {
	pass := checkFunc(func(string, string) error { return nil })
	s := &Server{opts: Options{RecipientChecks: []extension.RecipientCheck{pass}, CheckTimeout: 5 * time.Second}}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.checkRecipient("acme", "a@dest.example"); err != nil {
			b.Fatal(err)
		}
	}
}
