package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/spool"
	"corriere/core/testlib"
)

// TestStorageFull checks that a spool under its free-space reserve is
// answered 452 4.3.1 at MAIL FROM, after DATA, and when the message itself
// would cross the reserve, and that mail is accepted again once space
// returns. The free space is injected; core/spool's TestDiskFull fills a
// real filesystem.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	const minFree = 8 << 20
	var free atomic.Uint64
	free.Store(1 << 30)
	s, addr, sp, col := startServer(t, serverSetup{
		relayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		spool: func(o *spool.Options) {
			o.MinFree = minFree
			o.FreeSpace = func(string) (uint64, uint64, error) { return free.Load(), 1 << 40, nil }
			o.SpaceCheckInterval = 10 * time.Millisecond
		},
	})

	// setFree changes the reading and waits until the spool has seen it.
	setFree := func(n uint64, full bool) {
		t.Helper()
		free.Store(n)
		testlib.WaitFor(t, fmt.Sprintf("the spool to see %d bytes free", n), func() bool {
			return errors.Is(sp.Room(), spool.ErrNoSpace) == full
		})
	}
	send := func(dataReply string) []string {
		return []string{
			"c -> MAIL FROM:<app@anywhere.example>", "c <- 250",
			"c -> RCPT TO:<b@dest.example>", "c <- 250",
			"c -> DATA", "c <- 354",
			"c -> Subject: disk", "c ->", "c -> hello", "c -> .", "c <- " + dataReply,
		}
	}
	greet := []string{"c <- 220", "c -> EHLO client.example", "c <- 250"}
	quit := []string{"c -> QUIT", "c <- 221"}
	dialogue := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	runDialogue(t, addr, dialogue(greet, send("250"), quit))

	setFree(minFree-1, true)
	runDialogue(t, addr, dialogue(greet, []string{"c -> MAIL FROM:<app@anywhere.example>", "c <- 452 4.3.1"}, quit))

	// The reserve is crossed during the transaction: refused after DATA.
	setFree(1<<30, false)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	script := dialogue(greet, send("452 4.3.1"), quit)
	halfway := len(greet) + 4 // after RCPT's reply
	converse(t, conn, r, script[:halfway])
	setFree(minFree-1, true)
	converse(t, conn, r, script[halfway:])

	// Room at MAIL, but the message itself would cross the reserve.
	setFree(minFree+100, false)
	runDialogue(t, addr, dialogue(greet, send("452 4.3.1"), quit))

	setFree(1<<30, false)
	runDialogue(t, addr, dialogue(greet, send("250"), quit))
	if got := len(col.metas); got != 2 {
		t.Fatalf("%d messages spooled, want the 2 sent with room", got)
	}
	if got := s.Rejections()["storage_full"]; got != 3 {
		t.Fatalf("storage_full rejections = %d, want 3", got)
	}
}

// converse runs the "c -> X" and "c <- X" lines of a dialogue on an open
// connection.
func converse(t *testing.T, conn net.Conn, r *bufio.Reader, script []string) {
	t.Helper()
	for _, line := range script {
		if out, ok := strings.CutPrefix(line, "c ->"); ok {
			if _, err := conn.Write([]byte(strings.TrimPrefix(out, " ") + "\r\n")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want := strings.TrimPrefix(line, "c <- ")
		got, err := readReply(r)
		if err != nil || !strings.HasPrefix(got, want) {
			t.Fatalf("got %q (%v), want %q", got, err, want)
		}
	}
}
