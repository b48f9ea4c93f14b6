package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"corriere/core/inspect"
	"corriere/core/mailtest"
	"corriere/core/testlib"
)

// greylistingWorld serves a DNS zone on loopback where slow.test's MX, at
// slowIP, answers 451 to every recipient, and sender.test's MX, at
// senderIP, accepts everything (the DSNs); it returns the DNS address, the
// MX port and the sender's receiver.
func greylistingWorld(t *testing.T, slowIP, senderIP string) (string, int, *mailtest.Receiver) {
	t.Helper()
	dnsAddr, port := loopbackMX(t, "slow.test", slowIP, "sender.test", senderIP)
	mailtest.Start(t, fmt.Sprintf("%s:%d", slowIP, port), mailtest.Options{
		Rcpt: func(string, int) error { return mailtest.Reply(451, "4.7.1", "Greylisted, try again later") },
	})
	return dnsAddr, port, mailtest.Start(t, fmt.Sprintf("%s:%d", senderIP, port), mailtest.Options{})
}

// TestQueueListAndShow runs the real binary against a receiver that
// answers 451 to every recipient of one domain, queues recipients there,
// and checks queue list finds them all and queue show explains one: the
// 451 and the policy's trace. Both go through the admin API of the running
// node, then through the spool after it stopped.
func TestQueueListAndShow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dnsAddr, port, senderMX := greylistingWorld(t, "127.0.0.42", "127.0.0.43")
	spool := t.TempDir()
	p := startServe(t, spool, "--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "1h")
	// CORRIERE_CHECK_N runs the outside check at its own size (500).
	n := 25
	if v, err := strconv.Atoi(os.Getenv("CORRIERE_CHECK_N")); err == nil && v > 0 {
		n = v
	}
	conn, rw, err := openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if line, err := smtpSend(rw, "app@sender.test", fmt.Sprintf("user%d@slow.test", i), "Subject: hi\r\n\r\nhello\r\n"); err != nil || !strings.HasPrefix(line, "250") {
			t.Fatalf("message %d: %q, %v", i, line, err)
		}
	}
	conn.Close()

	list := func() inspect.ListResponse {
		t.Helper()
		var out, errb bytes.Buffer
		if status := queueList(context.Background(), []string{"--spool", spool, "--scripts", "../../scripts", "--rules", "../../rules",
			"--domain", "slow.test", "--json"}, &out, &errb); status != 0 {
			t.Fatalf("queue list: status %d: %s", status, errb.String())
		}
		var l inspect.ListResponse
		if err := json.Unmarshal(out.Bytes(), &l); err != nil {
			t.Fatalf("queue list --json: %v\n%s", err, out.String())
		}
		return l
	}
	var l inspect.ListResponse
	// The shipped policy sends 300 messages a minute to an unknown provider.
	testlib.WaitForWithin(t, 10*time.Second+time.Duration(n)*250*time.Millisecond, "every recipient deferred with the 451", func() bool {
		l = list()
		if len(l.Recipients) != n {
			return false
		}
		for _, r := range l.Recipients {
			if r.State != inspect.StateDeferred || !strings.HasPrefix(r.LastReply, "451 4.7.1") {
				return false
			}
		}
		return true
	})
	show := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if status := queueShow(context.Background(), []string{"--spool", spool, "--scripts", "../../scripts", "--rules", "../../rules",
			l.Recipients[0].ID}, &out, &errb); status != 0 {
			t.Fatalf("queue show: status %d: %s", status, errb.String())
		}
		return out.String()
	}
	for _, want := range []string{"451 4.7.1 Greylisted", "classify", "route", "shape", "on_response", ".lua:", "deferred, 1 attempts"} {
		if s := show(); !strings.Contains(s, want) {
			t.Errorf("queue show through the admin API lacks %q:\n%s", want, s)
		}
	}

	// With the node stopped, the same answers come from the spool.
	p.kill()
	if got := list(); len(got.Recipients) != n {
		t.Errorf("queue list on the stopped node's spool: %d recipients, want %d", len(got.Recipients), n)
	}
	if s := show(); !strings.Contains(s, "451 4.7.1 Greylisted") || !strings.Contains(s, "on_response") {
		t.Errorf("queue show on the stopped node's spool:\n%s", s)
	}

	// Started again, the node bounces them all on the operator's word: a
	// DSN each reaches the sender's MX, and the queue is empty.
	startServe(t, spool, "--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "1h")
	var out, errb bytes.Buffer
	// Suspend and resume the provider through the admin API.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"suspend", "--provider", "slow.test", "--for", "1h", "--reason", "maintenance"}, "suspended 1 (provider slow.test"},
		{[]string{"resume", "--provider", "slow.test"}, "resumed 1 (provider slow.test"},
	} {
		out.Reset()
		if status := queueSuspend(context.Background(), c.args[0], append(c.args[1:], "--spool", spool), &out, &errb); status != 0 ||
			!strings.HasPrefix(out.String(), c.want) {
			t.Errorf("queue %v: status %d, %q (%s); want %q", c.args, status, out.String(), errb.String(), c.want)
		}
	}
	out.Reset()
	if status := queueAct(context.Background(), "bounce", []string{"--spool", spool, "--domain", "slow.test",
		"--reason", "the mailbox provider is gone", "--json"}, &out, &errb); status != 0 {
		t.Fatalf("queue bounce: status %d: %s", status, errb.String())
	}
	var res inspect.ActResponse
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Selected != n || res.Done+res.Pending != n {
		t.Fatalf("queue bounce answered %s (%v), want %d selected, done or pending", out.String(), err, n)
	}
	dsns := senderMX.Wait(t, n, 20*time.Second+time.Duration(n)*250*time.Millisecond)
	for _, d := range dsns {
		if !strings.Contains(string(d.Data), "the mailbox provider is gone") {
			t.Errorf("a DSN lacks the operator's reason:\n%s", d.Data)
			break
		}
	}
	if got := list(); len(got.Recipients) != 0 {
		t.Errorf("after the bounce, %d recipients still listed", len(got.Recipients))
	}
	// The metrics, scraped without a token, count the bounces.
	addr, err := os.ReadFile(filepath.Join(spool, "admin.addr"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	bounced := 0.0
	for _, m := range families["corriere_recipient_outcomes_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == "bounced" {
				bounced += m.GetCounter().GetValue()
			}
		}
	}
	if bounced != float64(n) {
		t.Errorf("/metrics counts %v bounced recipients, want %d", bounced, n)
	}
	if status := queueAct(context.Background(), "delete", []string{"--spool", spool}, &out, &errb); status != 2 ||
		!strings.Contains(errb.String(), "at least one selector") {
		t.Errorf("delete without a selector: status %d, %q", status, errb.String())
	}
}
