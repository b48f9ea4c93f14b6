package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/message"
	"corriere/core/policy"
)

// hardIfFull is a policy that calls a full mailbox hard (abandoned) and an
// unknown user soft, the reverse of the category's usual meaning.
type hardIfFull struct{ policy.Default }

func (p *hardIfFull) OnResponse(ctx context.Context, a *policy.Attempt) (policy.Verdict, error) {
	v, err := p.Default.OnResponse(ctx, a)
	if v.Action == policy.Bounce {
		v.Hard = v.Category == "mailboxfull"
	}
	return v, err
}

// TestBouncedEventCarriesThePolicysHard: the bounced event says hard
// exactly when on_response's verdict did, whatever the category, so that
// suppression follows the policy.
func TestBouncedEventCarriesThePolicysHard(t *testing.T) {
	t.Parallel()
	w := newWorld(t, &hardIfFull{}, nil)
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	w.receiver("127.0.0.21", mailtest.Options{Rcpt: func(rcpt string, _ int) error {
		switch {
		case strings.HasPrefix(rcpt, "unknown"):
			return mailtest.Reply(550, "5.1.1", "no such user")
		case strings.HasPrefix(rcpt, "full"):
			return mailtest.Reply(552, "5.2.2", "mailbox full")
		}
		return nil
	}})
	w.send("", 0, message.RetHdrs, "unknown@a.test", "full@a.test")
	w.waitDone(5 * time.Second)
	want := map[string]bool{"unknown@a.test": false, "full@a.test": true}
	got := map[string]bool{}
	for _, e := range w.events.Of(event.Bounced) {
		got[e.Recipient] = e.Hard
	}
	if len(got) != len(want) {
		t.Fatalf("bounced events for %v, want %v", got, want)
	}
	for rcpt, hard := range want {
		if got[rcpt] != hard {
			t.Errorf("%s bounced with hard = %v, want %v", rcpt, got[rcpt], hard)
		}
	}
}
