package bounce

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"corriere/core/event"
	"corriere/core/policy"
)

// Result is one classified recipient of a bounce.
type Result struct {
	// Report is the parsed failure, as handed to the policy.
	Report policy.BounceReport
	// Verdict is the policy's decision.
	Verdict policy.BounceVerdict
}

// CategoryUnknown is the category of a report the policy failed to
// classify (policy.Policy.OnBounce returned an error).
const CategoryUnknown event.Category = "unknown"

// Classify parses raw and asks p.OnBounce about every failure it reports.
// It is the one code path of the bounce listener and of
// "corriere bounce classify". A message that is not a bounce yields no
// results and no error. When the policy fails on some reports, those are
// returned with the category "unknown" and the errors are joined into the
// returned error; the other results are still returned.
func Classify(ctx context.Context, raw []byte, p policy.Policy) ([]Result, error) {
	rep, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bounce: classify: %w", err)
	}
	results := make([]Result, 0, len(rep.Failures))
	var errs []error
	for i := range rep.Failures {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("bounce: classify: %w", err)
		}
		r := Result{Report: rep.Failures[i]}
		v, err := p.OnBounce(ctx, &r.Report)
		if err != nil {
			errs = append(errs, fmt.Errorf("bounce: classify %s: %w", r.Report.Recipient, err))
			v = policy.BounceVerdict{Category: CategoryUnknown}
		}
		r.Verdict = v
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

// FormatLine formats a result as one tab-separated line: file, recipient,
// category, "hard" or "soft", status ("-" when the bounce gave none), and,
// for feedback reports, the feedback type. Tabs and line breaks inside
// fields are replaced by spaces.
func FormatLine(file string, r Result) string {
	hardness := "soft"
	if r.Verdict.Hard {
		hardness = "hard"
	}
	status := r.Report.Status
	if status == "" {
		status = "-"
	}
	fields := []string{file, r.Report.Recipient, string(r.Verdict.Category), hardness, status}
	if r.Report.Kind == KindARF {
		ft := r.Report.FeedbackType
		if ft == "" {
			ft = "-"
		}
		fields = append(fields, ft)
	}
	for i, f := range fields {
		fields[i] = strings.Map(func(c rune) rune {
			if c == '\t' || c == '\n' || c == '\r' {
				return ' '
			}
			return c
		}, f)
	}
	return strings.Join(fields, "\t")
}
