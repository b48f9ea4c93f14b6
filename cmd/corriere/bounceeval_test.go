package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/bounce"
)

// writeCorpus writes a labelled corpus of text bounces to a new folder:
// name → the diagnostic line the bounce quotes, with the expected reason.
func writeCorpus(t *testing.T, mails map[string][2]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "mail"), 0o755); err != nil {
		t.Fatal(err)
	}
	tsv := "file\tindex\treason\tstatus\treplycode\thardbounce\tfeedbacktype\n"
	for name, m := range mails {
		raw := "From: MAILER-DAEMON@mx.example.net\nTo: s@example.org\nSubject: Undelivered Mail Returned to Sender\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nDelivery failed.\n" +
			"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n" +
			"Final-Recipient: rfc822; r@example.net\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; " + m[0] + "\n--b--\n"
		if err := os.WriteFile(filepath.Join(dir, "mail", name), []byte(raw), 0o644); err != nil {
			t.Fatal(err)
		}
		tsv += name + "\t1\t" + m[1] + "\t5.0.0\t550\tfalse\t\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "expected.tsv"), []byte(tsv), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBounceEval runs "corriere bounce eval" on a synthetic corpus of
// three bounces, one of them labelled against the rules, and checks the
// agreement, the table, the confusion and the miss it prints, and that a
// held-out fold's misses stay hidden.
func TestBounceEval(t *testing.T) {
	mails := map[string][2]string{
		"a.eml": {"550 mailbox is full", "mailboxfull"},
		"b.eml": {"550 sorry, your message was detected as spam", "spamdetected"},
		"c.eml": {"550 quota exceeded for this mailbox", "userunknown"},
	}
	dir := writeCorpus(t, mails)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		full := append([]string{"eval", "--scripts", repoScripts, "--rules", repoRules}, args...)
		status := runBounce(context.Background(), full, nil, &out, &errOut)
		return status, out.String(), errOut.String()
	}
	status, out, errOut := run("--misses", dir)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	for _, want := range []string{
		"all: 2/3 = 66.7%",
		"mailboxfull             1         2        1     50.0%  100.0%",
		"   1  userunknown -> mailboxfull",
		"c.eml\t1\tuserunknown\tmailboxfull\trule ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	k := bounce.Fold("c.eml", 5)
	status, out, _ = run("--holdout", string(rune('0'+k)), "--misses", dir)
	if status != 0 {
		t.Fatalf("status %d", status)
	}
	if !strings.Contains(out, "(held out)") || strings.Contains(out, "c.eml") || strings.Contains(out, "-> mailboxfull") {
		t.Errorf("the held-out fold's miss is shown:\n%s", out)
	}

	for _, args := range [][]string{{}, {"--holdout", "5", dir}, {dir, dir}} {
		if status, _, _ := run(args...); status != 2 {
			t.Errorf("args %q: status %d, want 2", args, status)
		}
	}
	if status, _, _ := run(t.TempDir()); status != 1 {
		t.Errorf("a folder without expected.tsv: status %d, want 1", status)
	}
}
