package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/reputation"
	"corriere/core/testlib"
)

// TestReputationAgreesWithTheReceiver runs the real binary against a
// receiver that accepts most recipients, refuses some for good (550 5.1.1)
// and defers others once (452), and checks that `corriere reputation
// --provider P --json` counts what the receiver answered: attempts,
// deliveries, deferrals and bounces by category. It then restarts the node
// and checks the counts survive.
func TestReputationAgreesWithTheReceiver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dnsAddr, port := loopbackMX(t, "inbox.test", "127.0.0.44")
	var mu sync.Mutex
	answered := map[int]int{}
	recv := mailtest.Start(t, fmt.Sprintf("127.0.0.44:%d", port), mailtest.Options{
		Rcpt: func(rcpt string, n int) error {
			code := 250
			switch {
			case strings.HasPrefix(rcpt, "gone"):
				code = 550
			case strings.HasPrefix(rcpt, "later") && n == 0:
				code = 452
			}
			mu.Lock()
			answered[code]++
			mu.Unlock()
			switch code {
			case 550:
				return mailtest.Reply(550, "5.1.1", "No such user")
			case 452:
				return mailtest.Reply(452, "4.2.2", "Mailbox over quota for now")
			}
			return nil
		},
	})
	spool := t.TempDir()
	rules := unthrottledRules(t)
	serve := func() *serveProcess {
		return startServe(t, spool, "--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "200ms", "--rules", rules)
	}
	p := serve()
	conn, rw, err := openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"gone1@inbox.test", "gone2@inbox.test", "later1@inbox.test", "later2@inbox.test"}
	for i := range 8 {
		rcpts = append(rcpts, fmt.Sprintf("user%d@inbox.test", i))
	}
	for _, r := range rcpts {
		if line, err := smtpSend(rw, "app@sender.test", r, "Subject: hi\r\n\r\nhello\r\n"); err != nil || !strings.HasPrefix(line, "250") {
			t.Fatalf("%s: %q, %v", r, line, err)
		}
	}
	conn.Close()

	tryReport := func(args ...string) (reputation.Report, error) {
		var out, errb bytes.Buffer
		if status := reputationCmd(context.Background(), append([]string{"--spool", spool, "--json"}, args...), &out, &errb); status != 0 {
			return reputation.Report{}, fmt.Errorf("status %d: %s", status, errb.String())
		}
		var r reputation.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return reputation.Report{}, fmt.Errorf("--json: %v\n%s", err, out.String())
		}
		return r, nil
	}
	report := func(args ...string) reputation.Report {
		t.Helper()
		r, err := tryReport(args...)
		if err != nil {
			t.Fatalf("reputation: %v", err)
		}
		return r
	}
	providerRow := func(r reputation.Report) (reputation.Row, bool) {
		for _, row := range r.Rows {
			if row.Dimension == reputation.ByProvider {
				return row, true
			}
		}
		return reputation.Row{}, false
	}
	var provider string
	defer func() {
		if t.Failed() {
			r, err := tryReport()
			t.Logf("report: %+v (%v)\nlogs: %s", r, err, p.logs())
		}
	}()
	testlib.WaitForWithin(t, 20*time.Second, "every recipient delivered or bounced", func() bool {
		r, err := tryReport()
		if err != nil {
			return false // the admin API may not listen yet
		}
		row, ok := providerRow(r)
		provider = row.Name
		return ok && row.Hour.Delivered+row.Hour.Bounced == int64(len(rcpts))
	})
	if got := recv.Recipients(); got != 10 {
		t.Errorf("receiver took %d recipients, want 10", got)
	}
	check := func(r reputation.Report) {
		t.Helper()
		row, ok := providerRow(r)
		if !ok || row.Name != provider {
			t.Fatalf("no row for provider %q in %+v", provider, r.Rows)
		}
		mu.Lock()
		want := reputation.Counts{Sent: int64(answered[250] + answered[452] + answered[550]), Delivered: int64(answered[250]),
			Deferred: int64(answered[452]), Bounced: int64(answered[550])}
		mu.Unlock()
		for label, w := range map[string]reputation.Window{"1h": row.Hour, "24h": row.Day, "7d": row.Week} {
			got := w.Counts
			if got.Sent != want.Sent || got.Delivered != want.Delivered || got.Deferred != want.Deferred || got.Bounced != want.Bounced {
				t.Errorf("%s at %s = %+v, receiver answered %+v", label, provider, got, want)
			}
			if n := got.BouncedBy[event.CategoryUserUnknown]; n != 2 {
				t.Errorf("%s bounced as userunknown = %d, want 2 (%v)", label, n, got.BouncedBy)
			}
		}
		for _, row := range r.Rows {
			if row.Provider != provider {
				t.Errorf("--provider %s returned a row at %q", provider, row.Provider)
			}
		}
	}
	check(report("--provider", provider))

	// The counts are in the spool: a node stopped and started again still
	// has them.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve stopped with %v:\n%s", err, p.logs())
	}
	if err := os.Remove(filepath.Join(spool, "admin.addr")); err != nil {
		t.Fatal(err)
	}
	p = serve()
	// The node takes SMTP connections a moment before its admin API
	// has written where it listens.
	testlib.WaitFor(t, "the restarted node's admin API", func() bool {
		_, err := tryReport()
		return err == nil
	})
	check(report("--provider", provider))

	var out, errb bytes.Buffer
	if status := reputationCmd(context.Background(), []string{"--spool", spool, "--provider", provider}, &out, &errb); status != 0 {
		t.Fatalf("reputation: status %d: %s", status, errb.String())
	}
	for _, want := range []string{"KIND", "provider", provider, "SENT 24h"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
