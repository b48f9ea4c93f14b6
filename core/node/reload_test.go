package node

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// TestReloadUnderLoad delivers thousands of messages through a node while
// its rewrite script is rewritten 20 times, half of the versions broken:
// each of five ways, once written in place and once renamed over the
// script as editors do. No message may fail or be lost, no broken version
// may become current, and every good one must. On a starved machine a hook
// may overrun its time budget and a message get the safe 451 instead: such
// refusals are allowed only as many as the hook calls the budgets stopped.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of messages")
	}
	t.Parallel()
	// The load runs until the rewrites are over, whatever total says.
	const total, clients, rewrites = 2000, 8, 20
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	port := mailtest.FreePort(t, "127.0.0.71")
	ds.MustAdd("dest.test. 300 IN MX 10 mx.dest.test.", "mx.dest.test. 300 IN A 127.0.0.71")
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.71:%d", port), mailtest.Options{})

	scripts := copyTree(t, "../../scripts")
	rewritePath := filepath.Join(scripts, "rewrite.lua")
	original, err := os.ReadFile(rewritePath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(t.Context(), Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: scripts, RulesDir: benchRules(t),
		RelayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		// A delivery deferred by a hook over its budget is soon retried.
		Retry:  []time.Duration{100 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })
	var failures atomic.Int64
	n.Subscribe(event.SinkFunc(func(e *event.Event) {
		if e.Type == event.Bounced || e.Type == event.Expired || e.Type == event.Rejected {
			failures.Add(1)
		}
	}))

	// The load: at least 5,000 messages over 8 sessions, going on until the
	// rewrites are over; every reply must be 250.
	var sent, overBudget atomic.Int64
	var rewritesDone atomic.Bool
	var loadErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			if err := inject(n.Addr(), c, total/clients, &rewritesDone, &sent, &overBudget); err != nil {
				errOnce.Do(func() { loadErr = err })
			}
		}(c)
	}

	// The rewrites, while the load runs.
	broken := []struct{ name, body string }{
		{"syntax error", "\nfunction rewrite(msg) if then end\n"},
		{"error at load", "\nerror('boom at load')\n"},
		{"hook error on smoke call", "\nfunction rewrite(msg) error('boom in hook') end\n"},
		{"runaway at load", "\nwhile true do end\n"},
		{"hook returns garbage", "\nfunction rewrite(msg) msg:set_header(nil, {}) end\n"},
	}
	good := 0
	var worst time.Duration
	for i := 0; i < rewrites; i++ {
		before := n.Policy().Status()
		if i%2 == 0 {
			good++
			version := fmt.Sprintf("\nlocal base_%d = rewrite\nfunction rewrite(msg) base_%d(msg); msg:set_header(\"X-Policy-Version\", \"%d\") end\n", i, i, good)
			writeScript(t, rewritePath, string(original)+version, i%4 == 0)
			took := testlib.WaitFor(t, fmt.Sprintf("good version %d to become current", good), func() bool {
				return n.Policy().Status().Generation != before.Generation
			})
			worst = max(worst, took)
			continue
		}
		b := broken[(i/2)%len(broken)]
		writeScript(t, rewritePath, string(original)+b.body, i%4 == 1)
		testlib.WaitFor(t, fmt.Sprintf("broken version (%s) to be refused or loaded", b.name), func() bool {
			return n.Policy().Status().ReloadErrors != before.ReloadErrors
		})
		st := n.Policy().Status()
		if st.Generation != before.Generation {
			t.Fatalf("broken version (%s) became current: generation %d", b.name, st.Generation)
		}
		if !strings.Contains(st.LastError, "rewrite.lua") {
			t.Errorf("refusal of %s does not name the file: %q", b.name, st.LastError)
		}
	}
	rewritesDone.Store(true)
	wg.Wait()
	if loadErr != nil {
		t.Fatalf("injection: %v (after %d accepted)", loadErr, sent.Load())
	}
	accepted := int(sent.Load())
	if refused := overBudget.Load(); refused > 0 {
		var stopped uint64
		for _, h := range n.Policy().Status().Hooks {
			stopped += h.Timeouts + h.MemoryFailures
		}
		if uint64(refused) > stopped {
			t.Errorf("%d messages answered 451 4.3.0, but only %d hook calls were stopped by their budgets", refused, stopped)
		}
		t.Logf("%d messages answered 451 4.3.0 by hooks over their budgets", refused)
	}
	testlib.WaitForWithin(t, 2*time.Minute, fmt.Sprintf("the delivery of %d messages", accepted), func() bool {
		return rx.Recipients() >= accepted
	})
	if f := failures.Load(); f != 0 {
		t.Errorf("%d messages bounced, expired or were rejected", f)
	}
	seen := map[string]bool{}
	for _, m := range rx.Messages() {
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			if v, ok := strings.CutPrefix(line, "X-Policy-Version: "); ok {
				seen[v] = true
			}
		}
	}
	if rx.Recipients() != accepted {
		t.Errorf("delivered %d recipients for %d accepted messages", rx.Recipients(), accepted)
	}
	if len(seen) < good/2 {
		t.Errorf("only %d of %d good versions were seen on delivered mail: the load did not overlap the rewrites", len(seen), good)
	}
	t.Logf("%d messages delivered during %d rewrites (%d good, %d broken); slowest good reload %v; versions seen on delivered mail: %d",
		accepted, rewrites, good, rewrites-good, worst.Round(time.Millisecond), len(seen))
}

// writeScript replaces a script in place, or by renaming a new file over
// it as many editors do.
func writeScript(t *testing.T, path, content string, rename bool) {
	t.Helper()
	if !rename {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// inject sends at least count messages over one session, and more until
// done is set. Every one must get 250, or the 451 4.3.0 of a policy hook
// that failed, counted in overBudget.
func inject(addr string, client, count int, done *atomic.Bool, sent, overBudget *atomic.Int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Minute))
	rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))
	// reply reads a (multi-line) reply and returns its last line.
	reply := func() (string, error) {
		for {
			l, err := rw.ReadString('\n')
			if err != nil || len(l) < 4 || l[3] != '-' {
				return strings.TrimSpace(l), err
			}
		}
	}
	read := func(want string) error {
		l, err := reply()
		if err == nil && !strings.HasPrefix(l, want) {
			err = fmt.Errorf("got %q, want %s", l, want)
		}
		return err
	}
	if err := read("220"); err != nil {
		return err
	}
	rw.WriteString("EHLO load.test\r\n")
	rw.Flush()
	if err := read("250"); err != nil {
		return err
	}
	for i := 0; i < count || !done.Load(); i++ {
		fmt.Fprintf(rw, "MAIL FROM:<app@sender.test>\r\nRCPT TO:<u%d.%d@dest.test>\r\nDATA\r\n", client, i)
		rw.Flush()
		for _, want := range []string{"250", "250", "354"} {
			if err := read(want); err != nil {
				return err
			}
		}
		fmt.Fprintf(rw, "Subject: reload %d.%d\r\nFrom: <app@sender.test>\r\n\r\nhello\r\n.\r\n", client, i)
		rw.Flush()
		l, err := reply()
		switch {
		case err != nil:
			return err
		case strings.HasPrefix(l, "451 4.3.0 Policy temporarily unavailable"):
			overBudget.Add(1)
		case strings.HasPrefix(l, "250"):
			sent.Add(1)
		default:
			return fmt.Errorf("got %q, want 250", l)
		}
	}
	return nil
}
