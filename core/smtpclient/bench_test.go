package smtpclient

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSend sends a 5 KB message over one reused connection to a
// go-smtp sink on loopback, with 1 and 10 recipients per transaction.
func BenchmarkSend(b *testing.B) {
	line := strings.Repeat("x", 76) + "\r\n"
	content := []byte("Subject: benchmark\r\n\r\n" + strings.Repeat(line, 5000/len(line)))
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("rcpts=%d", n), func(b *testing.B) {
			k := startSink(b, nil)
			k.discard = true
			c, err := Dial(context.Background(), k.addr, "mx.test", testOptions())
			if err != nil {
				b.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			env := Envelope{From: "sender@example.org"}
			for i := range n {
				env.Rcpts = append(env.Rcpts, Rcpt{Addr: fmt.Sprintf("rcpt%d@example.net", i)})
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				res, err := c.Send(ctx, env, content)
				if err != nil {
					b.Fatalf("Send: %v", err)
				}
				if o := res.Outcome(n - 1); o == nil || !o.Success() {
					b.Fatalf("Outcome = %v", o)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
