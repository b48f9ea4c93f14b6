package ingest

import (
	"net/netip"
	"strings"
	"testing"
)

// TestLongLines checks the line-length limit in message data: lines far
// over RFC 5321's 1,000 octets (one-line HTML newsletters) are accepted
// and spooled unchanged up to MaxLineLength, and a longer one is refused
// with a permanent 554 5.6.0 that names the limit.
func TestLongLines(t *testing.T) {
	tests := []struct {
		name string
		line int
		want string
	}{
		{"3,000 octets", 3000, "250 2.0.0"},
		{"exactly the limit", 8 << 10, "250 2.0.0"},
		{"over the limit", 8<<10 + 1, "554 5.6.0 Message has a line longer than 8192 octets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, sp, col := startServer(t, serverSetup{
				relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				tune:      func(o *Options) { o.MaxSize, o.MaxLineLength = 1<<20, 8<<10 },
			})
			c, r, _ := dialFrom(t, addr, "127.0.0.1")
			for _, line := range []string{"EHLO client.example", "MAIL FROM:<app@anywhere.example>", "RCPT TO:<b@dest.example>", "DATA"} {
				send(t, c, r, line)
			}
			long := strings.Repeat("x", tc.line)
			got := send(t, c, r, "Subject: long\r\n\r\n"+long+"\r\n.")
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("reply %q, want %q", got, tc.want)
			}
			if !strings.HasPrefix(tc.want, "250") {
				if len(col.metas) != 0 {
					t.Errorf("refused message was queued")
				}
				return
			}
			content, err := sp.Content(col.metas[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(content), "\r\n\r\n"+long+"\r\n") {
				t.Errorf("long line not spooled unchanged")
			}
		})
	}
}
