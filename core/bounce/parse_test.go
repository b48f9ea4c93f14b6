package bounce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/event"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata")

// failureWant is what a test expects of one failure.
type failureWant struct {
	recipient, action, status, feedbackType string
	replyCode                               int
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file     string
		kind     string
		failures []failureWant
		original bool
	}{
		{file: "dsn-postfix.eml", kind: KindDSN, original: true, failures: []failureWant{
			{recipient: "alice@receiver.example", action: "failed", status: "5.1.1", replyCode: 550},
			{recipient: "bob@receiver.example", action: "delayed", status: "4.2.2", replyCode: 452},
		}},
		{file: "dsn-success.eml", kind: KindDSN, failures: []failureWant{
			{recipient: "carol@receiver.example", action: "delivered", status: "2.0.0", replyCode: 250},
		}},
		{file: "qmail.eml", kind: KindText, original: true, failures: []failureWant{
			{recipient: "dave@receiver.example", action: "failed", status: "5.1.1", replyCode: 550},
			{recipient: "erin@receiver.example", action: "failed", status: "5.2.2", replyCode: 552},
		}},
		{file: "exchange-ndr.eml", kind: KindText, original: true, failures: []failureWant{
			{recipient: "frank@receiver.example", action: "failed", status: "5.1.1", replyCode: 550},
		}},
		{file: "arf.eml", kind: KindARF, original: true, failures: []failureWant{
			{recipient: "grace@provider.example", feedbackType: "abuse"},
		}},
		{file: "vacation.eml", kind: KindAutoreply, failures: []failureWant{
			{recipient: "heidi@receiver.example"},
		}},
		{file: "not-bounce.eml", kind: ""},
		{file: "broken-mime.eml", kind: KindText, original: true, failures: []failureWant{
			{recipient: "judy@receiver.example", action: "failed", status: "5.2.1", replyCode: 550},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Kind != tt.kind {
				t.Errorf("Kind = %q, want %q", r.Kind, tt.kind)
			}
			if (len(r.Original) > 0) != tt.original {
				t.Errorf("Original has %d bytes, want some: %v", len(r.Original), tt.original)
			}
			if len(r.Failures) != len(tt.failures) {
				t.Fatalf("got %d failures, want %d: %+v", len(r.Failures), len(tt.failures), r.Failures)
			}
			for i, w := range tt.failures {
				f := r.Failures[i]
				got := failureWant{recipient: f.Recipient, action: f.Action, status: f.Status, feedbackType: f.FeedbackType, replyCode: f.ReplyCode}
				if got != w {
					t.Errorf("failure %d = %+v, want %+v", i+1, got, w)
				}
				if f.Kind != tt.kind || f.Subject != r.Subject || f.From != r.From {
					t.Errorf("failure %d: Kind %q Subject %q From %q do not repeat the report's", i+1, f.Kind, f.Subject, f.From)
				}
			}
		})
	}
}

// TestGolden classifies every testdata message with the shipped rules and
// compares the "corriere bounce classify" lines with the .golden files;
// go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	pol := &rulesPolicy{rules: loadTestRules(t)}
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			results, err := Classify(context.Background(), raw, pol)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, r := range results {
				b.WriteString(FormatLine(name, r))
				b.WriteByte('\n')
			}
			golden := strings.TrimSuffix(path, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("classification changed:\ngot:\n%s\nwant:\n%s", b.String(), want)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		kind string
		rcpt string
	}{
		{
			name: "CRLF and a folded DSN field",
			raw: "From: MAILER-DAEMON@a.example\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; boundary=b\r\n\r\n" +
				"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a.example\r\n\r\n" +
				"Final-Recipient: rfc822; x@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n user unknown\r\n--b--\r\n",
			kind: KindDSN, rcpt: "x@b.example",
		},
		{
			name: "multipart without closing boundary",
			raw: "From: MAILER-DAEMON@a.example\nContent-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n" +
				"Final-Recipient: rfc822; y@b.example\nAction: failed\nStatus: 5.2.2\n",
			kind: KindDSN, rcpt: "y@b.example",
		},
		{
			name: "MIME headers lost",
			raw: "From: Mail Delivery Subsystem <MAILER-DAEMON@a.example>\nSubject: Returned mail\n\nThis is a MIME-encapsulated message\n\n--q1/a.example\n\nsee below\n\n" +
				"--q1/a.example\nContent-Type: message/delivery-status\n\nFinal-Recipient: RFC822; z@b.example\nAction: failed\nStatus: 4.4.7\n\n--q1/a.example--\n",
			kind: KindDSN, rcpt: "z@b.example",
		},
		{
			name: "header lines without colon and an mbox From line",
			raw:  "From MAILER-DAEMON Mon Mar  3 10:00:00 2025\nFrom: postmaster@a.example\nthis is no header\nSubject: failure notice\n\n<w@b.example>:\nRemote host said: 550 no such user\n",
			kind: KindText, rcpt: "w@b.example",
		},
		{
			name: "Latin-1 without a charset",
			raw:  "From: postmaster@a.example\nSubject: Unzustellbar\n\nEmpf\xe4nger unbekannt: <v@b.example>\n",
			kind: KindText, rcpt: "v@b.example",
		},
		{
			name: "a person's mail that talks like a bounce",
			raw:  "From: Kim <kim@a.example>\nSubject: your order\n\nSorry, we could not deliver your order to:\n  lee@b.example\n",
			kind: "",
		},
		{
			name: "the same words from a program",
			raw:  "From: Shop <no-reply@a.example>\nSubject: your order\n\nSorry, we could not deliver your message to:\n  lee@b.example\n",
			kind: KindText, rcpt: "lee@b.example",
		},
		{
			name: "a person's subject about a vacation",
			raw:  "From: Kim <kim@a.example>\nSubject: Re: vacation plans\n\nI am away next week.\n",
			kind: "",
		},
		{
			name: "an Outlook out-of-office reply",
			raw:  "From: Kim <kim@a.example>\nSubject: Out of Office: Newsletter\nX-Auto-Response-Suppress: All\n\nBack on Monday.\n",
			kind: KindAutoreply, rcpt: "kim@a.example",
		},
		{name: "no header at all", raw: "just some words\nover two lines\n", kind: ""},
		{name: "header only", raw: "Subject: hello\n", kind: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tt.kind {
				t.Fatalf("Kind = %q, want %q (failures %+v)", r.Kind, tt.kind, r.Failures)
			}
			if tt.rcpt == "" {
				if len(r.Failures) != 0 {
					t.Errorf("failures %+v, want none", r.Failures)
				}
				return
			}
			if len(r.Failures) != 1 || r.Failures[0].Recipient != tt.rcpt {
				t.Errorf("failures %+v, want one for %s", r.Failures, tt.rcpt)
			}
		})
	}
	if _, err := Parse([]byte(" \r\n")); err != ErrEmpty {
		t.Errorf("Parse(blank) error = %v, want ErrEmpty", err)
	}
}

// TestParseHuge checks that a very large bounce is read in bounded time.
func TestParseHuge(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: MAILER-DAEMON@a.example\nSubject: failure notice\n\n<u@b.example>:\n550 user unknown\n")
	line := strings.Repeat("x@y.example z ", 20) + "\n"
	for b.Len() < 12<<20 {
		b.WriteString(line)
	}
	start := time.Now()
	r, err := Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) == 0 || r.Failures[0].Recipient != "u@b.example" {
		t.Errorf("failures %+v, want u@b.example first", r.Failures)
	}
	if len(r.Failures) > maxRecipients {
		t.Errorf("%d failures, more than the bound %d", len(r.Failures), maxRecipients)
	}
	t.Logf("parsed %d MiB in %v", b.Len()>>20, time.Since(start))

	// Unclosed tags by the hundred thousand once made the HTML reader
	// quadratic.
	html := "From: MAILER-DAEMON@a.example\nSubject: failure notice\nContent-Type: text/html\n\n" + strings.Repeat("<a", 500000)
	start = time.Now()
	if _, err := Parse([]byte(html)); err != nil {
		t.Fatal(err)
	}
	t.Logf("parsed 1 MiB of broken HTML in %v", time.Since(start))
}

// TestARFSisimai reads the feedback reports of the shared corpus.
func TestARFSisimai(t *testing.T) {
	dir := filepath.Join(sharedDir, "arf", "sisimai")
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		t.Skipf("ARF corpus not available: %v", err)
	}
	defer f.Close()
	want := map[string][]string{} // file → feedback type per index
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 || c[0] == "file" {
			continue
		}
		want[c[0]] = append(want[c[0]], c[6])
	}
	rules := loadTestRules(t)
	for file, types := range want {
		t.Run(file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != KindARF {
				t.Fatalf("Kind = %q, want arf", r.Kind)
			}
			if len(r.Failures) < len(types) {
				t.Fatalf("%d reports, want %d", len(r.Failures), len(types))
			}
			for i, ft := range types {
				got := r.Failures[i]
				if got.FeedbackType != ft {
					t.Errorf("report %d: feedback type %q, want %q", i+1, got.FeedbackType, ft)
				}
				// A report may name nobody (arf-15 anonymises the
				// original "To"), but what it names is an address.
				if got.Recipient != "" && !validMailbox(got.Recipient) {
					t.Errorf("report %d: recipient %q", i+1, got.Recipient)
				}
				if v := rules.Classify(&got); v.Category != "feedback" {
					t.Errorf("report %d: category %q, want feedback", i+1, v.Category)
				}
			}
		})
	}
}

// TestARFStalwart checks feedback type and recipient against the expected
// parses of the Stalwart test reports.
func TestARFStalwart(t *testing.T) {
	dir := filepath.Join(sharedDir, "arf", "stalwart-mail-auth")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) == 0 {
		t.Skipf("no reports in %s", dir)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			js, err := os.ReadFile(strings.TrimSuffix(path, ".eml") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				FeedbackType   string  `json:"feedback_type"`
				OriginalRcptTo *string `json:"original_rcpt_to"`
			}
			if err := json.Unmarshal(js, &want); err != nil {
				t.Fatal(err)
			}
			r, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != KindARF || len(r.Failures) == 0 {
				t.Fatalf("Kind %q with %d reports, want an ARF report", r.Kind, len(r.Failures))
			}
			got := r.Failures[0]
			if ft := camelToFeedbackType(want.FeedbackType); got.FeedbackType != ft {
				t.Errorf("feedback type %q, want %q", got.FeedbackType, ft)
			}
			if want.OriginalRcptTo != nil {
				if rcpt := strings.Trim(*want.OriginalRcptTo, "<>"); got.Recipient != rcpt {
					t.Errorf("recipient %q, want %q", got.Recipient, rcpt)
				}
			}
		})
	}
}

// camelToFeedbackType turns Stalwart's "AuthFailure" into the ARF
// "auth-failure".
func camelToFeedbackType(s string) string {
	var b strings.Builder
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, p := range files {
		if raw, err := os.ReadFile(p); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=\"\"\n\n--\n--\n"))
	f.Add([]byte("From: MAILER-DAEMON@x\n\n<@>:\n550-5.1.1 a\n550 5.1.1 b\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Parse(raw)
		if err != nil {
			return
		}
		if r.Kind == "" && len(r.Failures) > 0 {
			t.Fatalf("failures without a kind: %+v", r.Failures)
		}
		for _, fl := range r.Failures {
			if len(fl.Diagnostic) > maxDiagnostic {
				t.Fatalf("diagnostic of %d bytes", len(fl.Diagnostic))
			}
		}
	})
}

func BenchmarkParseDSN(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "dsn-postfix.eml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseText(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "qmail.eml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFindAddresses(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<kijitora@example.jp>:", []string{"kijitora@example.jp"}},
		{"RCPT TO:<a.b+c@mx.example.co.jp> and x@y.org.", []string{"a.b+c@mx.example.co.jp", "x@y.org"}},
		{"rfc822;user@example.com", []string{"user@example.com"}},
		{"...user@example.com", []string{"user@example.com"}},
		{"http://x.example/?email=foo@bar.example", []string{"email=foo@bar.example"}},
		{"a@b.example.com123", []string{"a@b.example.com"}},
		{"a@x.c0m", nil},
		{"a@localhost", nil},
		{"@example.com", nil},
		{"a@b.com@c.org", []string{"a@b.com"}},
		{"bounce+x=y@list-server.example.net", []string{"bounce+x=y@list-server.example.net"}},
		{"a@-bad.example", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range findAddresses(tt.in) {
			if tt.in[m.start:m.end] != m.addr {
				t.Errorf("%q: offsets %d:%d do not hold %q", tt.in, m.start, m.end, m.addr)
			}
			got = append(got, m.addr)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("findAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseLayouts covers prose layouts that put the reason away from the
// address: after a heading, or before it.
func TestParseLayouts(t *testing.T) {
	rules := loadTestRules(t)
	tests := []struct {
		name, raw string
		category  event.Category
	}{
		{"reason under a heading",
			"From: postmaster@isp.example\nSubject: Returned mail: see transcript\n\n" +
				"   ----- The following addresses had delivery problems -----\nuser@isp.example\n\n" +
				"   ----- Non-delivered information -----\nThe number of messages in recipient's mailbox exceeded the local limit.\n",
			"mailboxfull"},
		{"reason before the address",
			"From: postmaster@notes.example\nSubject: Undeliverable message\n\n------- Failure Reasons --------\n\n" +
				"User not listed in public Name & Address Book\nuser@notes.example\n\n------- Returned Message --------\nFrom: a@b.example\n",
			"userunknown"},
		{"code in the next paragraph",
			"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nSubject: Delivery Status Notification (Failure)\n\n" +
				"Delivery to the following recipient failed permanently:\n\n     user@mx.example\n\nTechnical details of permanent failure:\n" +
				"Google tried to deliver your message, but it was rejected by the server.\n\n" +
				"The error that the other server returned was:\n552 5.2.2 <user@mx.example>... Mailbox Full\n",
			"mailboxfull"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Failures) != 1 {
				t.Fatalf("failures %+v, want one", r.Failures)
			}
			if v := rules.Classify(&r.Failures[0]); v.Category != tt.category {
				t.Errorf("category %q (%s) for %q, want %q", v.Category, rules.Explain(&r.Failures[0]), r.Failures[0].Diagnostic, tt.category)
			}
		})
	}
}

func TestRemoteHostIn(t *testing.T) {
	tests := []struct{ diag, want string }{
		{"host mx1.example.com[192.0.2.1] said: 550 5.1.1 unknown user (in reply to RCPT TO command)", "mx1.example.com"},
		{"SMTP error from remote mail server after RCPT TO:<a@example.org>: host mx.Example.ORG [192.0.2.2]: 550 no", "mx.example.org"},
		{"... while talking to mail.example.net.: >>> DATA <<< 554 rejected", "mail.example.net"},
		{"host 192.0.2.3[192.0.2.3] said: 550 no such user", ""},
		{"550 5.1.1 <a@example.org>: Recipient address rejected", ""},
		{"Giving up on host 192.0.2.4 and then host mx.example.com said no", "mx.example.com"},
	}
	for _, tt := range tests {
		if got := remoteHostIn(tt.diag); got != tt.want {
			t.Errorf("remoteHostIn(%q) = %q, want %q", tt.diag, got, tt.want)
		}
	}
}
