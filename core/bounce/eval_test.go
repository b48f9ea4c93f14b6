package bounce

import (
	"context"
	"strings"
	"testing"
)

func TestReadExpectations(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Expectation
		err      string
	}{
		{"header and rows", "file\tindex\treason\tstatus\treplycode\thardbounce\tfeedbacktype\n" +
			"a.eml\t1\tuserunknown\t5.1.1\t550\ttrue\t\tPostfix\n" +
			"a.eml\t2\tmailboxfull\t4.2.2\t452\tfalse\t\n",
			[]Expectation{{"a.eml", 1, "userunknown", "5.1.1", true}, {"a.eml", 2, "mailboxfull", "4.2.2", false}}, ""},
		{"CRLF and blank lines", "b.eml\t1\tblocked\t5.7.1\t554\tfalse\r\n\r\n",
			[]Expectation{{"b.eml", 1, "blocked", "5.7.1", false}}, ""},
		{"too few fields", "a.eml\t1\tblocked\n", nil, "line 1: 3 fields"},
		{"bad index", "a.eml\tone\tblocked\t5.7.1\t554\tfalse\n", nil, "line 1: index \"one\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadExpectations(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("row %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestFoldStable pins the fold of a few names: a changed hash would
// silently reshuffle everybody's cross-validation folds.
func TestFoldStable(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 100; i++ {
		name := "lhost-postfix-" + strings.Repeat("x", i) + ".eml"
		k := Fold(name, 5)
		if k < 0 || k >= 5 || Fold(name, 5) != k {
			t.Fatalf("Fold(%q, 5) = %d, not stable in [0,5)", name, k)
		}
		seen[k] = true
	}
	if len(seen) != 5 {
		t.Errorf("100 names fell in %d folds of 5", len(seen))
	}
	if Fold("anything", 1) != 0 || Fold("anything", 0) != 0 {
		t.Error("a single fold is not fold 0")
	}
}

func TestScoreOutcomes(t *testing.T) {
	o := func(reason, got string, hard, gotHard bool) Outcome {
		return Outcome{Expectation: Expectation{Reason: reason, Hard: hard}, Got: got, GotHard: gotHard}
	}
	s := ScoreOutcomes([]Outcome{
		o("userunknown", "userunknown", true, true),
		o("userunknown", "filtered", true, false),
		o("userunknown", "filtered", true, false),
		o("filtered", "filtered", false, false),
		o("feedback", "feedback", false, true),
		o("blocked", Missing, false, false),
	})
	if s.Total != 6 || s.Agree != 3 || s.HardAgree != 4 {
		t.Errorf("total %d agree %d hard %d, want 6 3 4", s.Total, s.Agree, s.HardAgree)
	}
	byName := map[string]CategoryScore{}
	for _, c := range s.Categories {
		byName[c.Category] = c
	}
	if c := byName["filtered"]; c.Expected != 1 || c.Predicted != 3 || c.Correct != 1 || c.Recall() != 1 || c.Precision() != 1.0/3 {
		t.Errorf("filtered: %+v", c)
	}
	if c := byName["userunknown"]; c.Expected != 3 || c.Predicted != 1 || c.Correct != 1 || c.Precision() != 1 {
		t.Errorf("userunknown: %+v", c)
	}
	if len(s.Confusions) != 2 || s.Confusions[0] != (Confusion{"userunknown", "filtered", 2}) {
		t.Errorf("confusions %+v", s.Confusions)
	}
	if s.Rate() != 0.5 {
		t.Errorf("rate %v", s.Rate())
	}
}

// TestEvaluateFile pairs the recipients of a DSN with expectations given
// out of order, and marks those the message does not report as missing.
func TestEvaluateFile(t *testing.T) {
	raw := "From: MAILER-DAEMON@mx.example.net\r\nTo: a@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown\r\n" +
		"--b--\r\n"
	pol := &rulesPolicy{rules: loadTestRules(t)}
	out, err := EvaluateFile(context.Background(), []byte(raw), pol, []Expectation{
		{File: "x.eml", Index: 2, Reason: "blocked"},
		{File: "x.eml", Index: 1, Reason: "userunknown", Hard: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Index != 1 || !out[0].OK() || !out[0].GotHard || out[1].Got != Missing {
		t.Errorf("outcomes %+v", out)
	}
}
