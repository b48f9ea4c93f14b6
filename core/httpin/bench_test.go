package httpin_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"corriere/core/httpin"
	"corriere/core/httpin/httpintest"
	"corriere/core/queue"
)

// BenchmarkInject posts requests of 1,000 recipients, each with its own
// substitution, to a node's API, one request at a time as a client
// waiting for each answer does, and reports the recipients accepted per
// second: each answered with a queue id after its message was synced to
// the spool. In "delivering" the node delivers them to a loopback
// receiver meanwhile; in "held" the tenant's mail is suspended, so the
// benchmark measures acceptance alone.
//
//	go test -run XXX -bench Inject -benchtime 20x ./core/httpin
func BenchmarkInject(b *testing.B) {
	b.Run("delivering", func(b *testing.B) { benchInject(b, false) })
	b.Run("held", func(b *testing.B) { benchInject(b, true) })
}

func benchInject(b *testing.B, held bool) {
	f := httpintest.StartNode(b, "", nil)
	if held {
		if _, err := f.Node.Queue().Suspend(queue.Scope{Tenant: "acme"}, time.Now().Add(time.Hour), "benchmark"); err != nil {
			b.Fatal(err)
		}
	}
	const batch = 1000
	req := httpin.Request{Sender: "app@sender.test", Content: httpin.Content{
		From: "App <app@sender.test>", Subject: "Your order {{.order}}",
		Text: "Dear {{.name}},\nyour order {{.order}} has shipped.\n", HTML: "<p>Dear {{.name}},</p><p>your order {{.order}} has shipped.</p>",
	}}
	for i := range batch {
		req.Recipients = append(req.Recipients, httpin.Recipient{
			Email: fmt.Sprintf("r%d@d%d.test", i, i%4), Substitutions: map[string]any{"name": fmt.Sprintf("R%d", i), "order": 100000 + i},
		})
	}
	body := httpintest.MustJSON(b, req)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	accepted := 0
	cpu0 := cpuTime(b)
	start := time.Now()
	for b.Loop() {
		status, out := f.Post(b, f.Key, body)
		if status != 200 {
			b.Fatalf("status %d: %v", status, out)
		}
		accepted += int(out["accepted"].(float64))
	}
	b.ReportMetric(float64(accepted)/time.Since(start).Seconds(), "rcpt/s")
	// The CPU the process used per recipient, delivery included: on a
	// machine shared with other work the rate above measures the share
	// this process got; this is what each recipient costs.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(accepted), "cpu-µs/rcpt")
	b.ReportMetric(float64(accepted)/float64(b.N), "accepted/op")
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
