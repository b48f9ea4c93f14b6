package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/inspect"
	"corriere/core/testlib"
)

// TestQueueActionsOnAStoppedNode takes every kind of action on the spool
// of a stopped node, then starts it again: the bounced recipient's DSN goes
// out, the deleted one is gone, the provider stays suspended until a
// resume, and the retried recipient is tried as soon as it is resumed
// instead of an hour later. The actions' events are in the node's log.
func TestQueueActionsOnAStoppedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dnsAddr, port, senderMX := greylistingWorld(t, "127.0.0.44", "127.0.0.45")
	spool := t.TempDir()
	serveArgs := []string{"--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "1h"}
	p := startServe(t, spool, serveArgs...)
	conn, rw, err := openSession(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if line, err := smtpSend(rw, "app@sender.test", fmt.Sprintf("user%d@slow.test", i), "Subject: hi\r\n\r\nhello\r\n"); err != nil || !strings.HasPrefix(line, "250") {
			t.Fatalf("message %d: %q, %v", i, line, err)
		}
	}
	conn.Close()
	policyDirs := []string{"--spool", spool, "--scripts", "../../scripts", "--rules", "../../rules"}
	list := func(extra ...string) []inspect.Recipient {
		t.Helper()
		var out, errb bytes.Buffer
		if status := queueList(context.Background(), append(append(policyDirs, "--domain", "slow.test", "--json"), extra...), &out, &errb); status != 0 {
			t.Fatalf("queue list: status %d: %s", status, errb.String())
		}
		var l inspect.ListResponse
		if err := json.Unmarshal(out.Bytes(), &l); err != nil {
			t.Fatalf("queue list --json: %v\n%s", err, out.String())
		}
		return l.Recipients
	}
	testlib.WaitForWithin(t, 20*time.Second, "three recipients deferred", func() bool {
		return len(list("--state", "deferred")) == 3
	})
	p.stop()

	for _, c := range []struct {
		run  func(ctx context.Context, args []string, stdout, stderr *bytes.Buffer) int
		args []string
		want string
	}{
		{act("bounce"), []string{"--rcpt", "user0@slow.test", "--reason", "the customer left"}, "bounce: 1 selected, 1 done on the stopped node's spool; their DSNs go out when the node starts"},
		{act("delete"), []string{"--rcpt", "user1@slow.test", "--reason", "test mail"}, "delete: 1 selected, 1 done on the stopped node's spool; they are removed when the node starts"},
		{act("retry"), []string{"--rcpt", "user2@slow.test"}, "retry: 1 selected, 1 done on the stopped node's spool; they are due when the node starts"},
		{suspend("suspend"), []string{"--provider", "slow.test", "--for", "1h", "--reason", "maintenance"}, "suspended 1 (provider slow.test"},
	} {
		var out, errb bytes.Buffer
		if status := c.run(context.Background(), append(policyDirs, c.args...), &out, &errb); status != 0 || !strings.HasPrefix(out.String(), c.want) {
			t.Errorf("%v: status %d, %q (%s); want %q", c.args, status, out.String(), errb.String(), c.want)
		}
	}
	events, err := os.ReadFile(filepath.Join(spool, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"suspended"`} {
		if !bytes.Contains(events, []byte(want)) {
			t.Errorf("the event log lacks %s", want)
		}
	}

	startServe(t, spool, serveArgs...)
	dsn := senderMX.Wait(t, 1, 20*time.Second)[0]
	if !strings.Contains(string(dsn.Data), "the customer left") || !strings.Contains(string(dsn.Data), "user0@slow.test") {
		t.Errorf("the DSN of the offline bounce:\n%s", dsn.Data)
	}
	testlib.WaitFor(t, "the bounced and deleted events in the log", func() bool {
		events, err := os.ReadFile(filepath.Join(spool, "events.jsonl"))
		return err == nil && bytes.Contains(events, []byte(`"type":"bounced"`)) && bytes.Contains(events, []byte(`"type":"deleted"`))
	})
	testlib.WaitForWithin(t, 10*time.Second, "user2 suspended with its provider", func() bool {
		l := list()
		return len(l) == 1 && l[0].Address == "user2@slow.test" && l[0].State == "suspended" && l[0].Attempts == 1
	})
	var out, errb bytes.Buffer
	if status := queueSuspend(context.Background(), "resume", []string{"--spool", spool, "--provider", "slow.test"}, &out, &errb); status != 0 {
		t.Fatalf("resume: status %d, %s", status, errb.String())
	}
	testlib.WaitForWithin(t, 20*time.Second, "user2 tried again at once, as the offline retry said", func() bool {
		l := list()
		return len(l) == 1 && l[0].Attempts == 2
	})
}

// act and suspend adapt the queue commands to one signature.
func act(action string) func(ctx context.Context, args []string, stdout, stderr *bytes.Buffer) int {
	return func(ctx context.Context, args []string, stdout, stderr *bytes.Buffer) int {
		return queueAct(ctx, action, args, stdout, stderr)
	}
}

func suspend(action string) func(ctx context.Context, args []string, stdout, stderr *bytes.Buffer) int {
	return func(ctx context.Context, args []string, stdout, stderr *bytes.Buffer) int {
		return queueSuspend(ctx, action, args, stdout, stderr)
	}
}
