package bounce

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/policy"
)

// failingPolicy fails to classify one recipient.
type failingPolicy struct {
	rulesPolicy
	fail string
}

func (p *failingPolicy) OnBounce(ctx context.Context, r *policy.BounceReport) (policy.BounceVerdict, error) {
	if r.Recipient == p.fail {
		return policy.BounceVerdict{}, errors.New("script error")
	}
	return p.rulesPolicy.OnBounce(ctx, r)
}

func TestClassify(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "dsn-postfix.eml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := loadTestRules(t)

	results, err := Classify(context.Background(), raw, &rulesPolicy{rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Verdict.Category != "userunknown" || results[1].Verdict.Category != "mailboxfull" {
		t.Fatalf("results %+v", results)
	}

	// A policy that fails on one recipient: the other is still classified.
	pol := &failingPolicy{rulesPolicy: rulesPolicy{rules: rules}, fail: "alice@receiver.example"}
	results, err = Classify(context.Background(), raw, pol)
	if err == nil || !strings.Contains(err.Error(), "alice@receiver.example: script error") {
		t.Errorf("error = %v, want the failing recipient named", err)
	}
	if len(results) != 2 || results[0].Verdict.Category != CategoryUnknown || results[1].Verdict.Category != "mailboxfull" {
		t.Errorf("results %+v", results)
	}

	// The default Go policy serves too.
	results, err = Classify(context.Background(), raw, &policy.Default{})
	if err != nil || len(results) != 2 || results[0].Verdict.Category != "userunknown" {
		t.Errorf("with policy.Default: %+v, %v", results, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Classify(ctx, raw, pol); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: error = %v", err)
	}
	if _, err := Classify(context.Background(), nil, pol); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty message: error = %v", err)
	}
	notBounce, err := os.ReadFile(filepath.Join("testdata", "not-bounce.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if results, err := Classify(context.Background(), notBounce, pol); err != nil || len(results) != 0 {
		t.Errorf("not a bounce: %+v, %v", results, err)
	}
}

func TestFormatLine(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{"dsn", Result{
			Report:  policy.BounceReport{Kind: KindDSN, Recipient: "a@b.example", Status: "5.1.1"},
			Verdict: policy.BounceVerdict{Category: "userunknown", Hard: true},
		}, "x.eml\ta@b.example\tuserunknown\thard\t5.1.1"},
		{"no status", Result{
			Report:  policy.BounceReport{Kind: KindText, Recipient: "a@b.example"},
			Verdict: policy.BounceVerdict{Category: "onhold"},
		}, "x.eml\ta@b.example\tonhold\tsoft\t-"},
		{"feedback report", Result{
			Report:  policy.BounceReport{Kind: KindARF, Recipient: "a@b.example", FeedbackType: "abuse"},
			Verdict: policy.BounceVerdict{Category: "feedback", Hard: true},
		}, "x.eml\ta@b.example\tfeedback\thard\t-\tabuse"},
		{"tabs in a field", Result{
			Report:  policy.BounceReport{Kind: KindText, Recipient: "a\tb@c.example"},
			Verdict: policy.BounceVerdict{Category: "onhold"},
		}, "x.eml\ta b@c.example\tonhold\tsoft\t-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatLine("x.eml", tt.r); got != tt.want {
				t.Errorf("FormatLine = %q, want %q", got, tt.want)
			}
		})
	}
}
