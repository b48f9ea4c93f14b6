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
	"corriere/core/queue"
	"corriere/core/testlib"
)

// tlsRoutes is the default policy with a TLS policy per recipient domain.
type tlsRoutes struct {
	policy.Default
	tls map[string]policy.TLSPolicy
}

func (p *tlsRoutes) Route(ctx context.Context, d *policy.Delivery) (policy.Route, error) {
	rt, err := p.Default.Route(ctx, d)
	rt.TLS = p.tls[d.Domain]
	return rt, err
}

// TestOpenSessionNotReusedForStricterTLS: a session opened in clear for a
// domain without a TLS policy stays open (Linger) when mail for another
// domain on the same MX host comes, whose route requires TLS. The runner
// must not carry that mail over the clear session: it dials anew, the MX
// offers no STARTTLS, and the mail is deferred, never received.
func TestOpenSessionNotReusedForStricterTLS(t *testing.T) {
	t.Parallel()
	pol := &tlsRoutes{tls: map[string]policy.TLSPolicy{"secret.test": policy.TLSRequired}}
	w := newWorld(t, pol, func(o *queue.Options) { o.Linger = 10 * time.Second })
	w.mx("open.test", "mx.shared.test", "127.0.0.21")
	w.dns.MustAdd("secret.test. 300 IN MX 10 mx.shared.test.")
	rcv := w.receiver("127.0.0.21", mailtest.Options{Domain: "mx.shared.test"})

	w.send("s@sender.test", message.NotifyNever, "", "a@open.test")
	rcv.Wait(t, 1, 10*time.Second)
	w.send("s@sender.test", message.NotifyNever, "", "b@secret.test")
	received := func() bool {
		for _, m := range rcv.Messages() {
			if m.To[0] == "b@secret.test" {
				return true
			}
		}
		return false
	}
	deferred := func() bool {
		for _, e := range w.events.Of(event.Deferred) {
			if e.Recipient == "b@secret.test" && strings.HasPrefix(e.Reply, "451 4.7.10") {
				return true
			}
		}
		return false
	}
	testlib.WaitFor(t, "b@secret.test deferred or received", func() bool { return deferred() || received() })
	if received() {
		t.Fatal("mail whose route requires TLS went over a session in clear")
	}
	if n := rcv.Connections(); n != 2 {
		t.Errorf("%d sessions, want 2: the clear one and the dial that required TLS", n)
	}
}
