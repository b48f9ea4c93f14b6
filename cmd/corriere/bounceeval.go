package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"corriere/core/bounce"
)

const evalDescription = `
Measure how well the bounce policy classifies a labelled corpus: DIR holds
expected.tsv (one line per failed recipient: file, index, reason, status,
replycode, hardbounce, ... as in the shared Sisimai corpus) and mail/ with
the messages. Every message goes through the same code path as "corriere
bounce classify" (the on_bounce hook of --scripts, the patterns of
--rules/bounces.lua), and the command prints:

  - the agreement of the category with the expected reason, overall and
    per fold, and the hard/soft agreement;
  - per category: how many recipients expected it, how many were classified
    so, precision (correct/classified) and recall (correct/expected);
  - the confusion pairs (expected -> classified), most frequent first;
  - with --misses, every disagreement with the rule that decided it.

Cross-validation. Rules written by hand over-fit the bounces their author
has read. --folds N splits the corpus into N folds by a stable hash of the
file name; --holdout K keeps fold K out of sight: its agreement is printed
as one number, and the table, the confusions and the misses cover the other
folds only. Work on the misses of the other folds, then read fold K's
number; rotate K.

Exit status: 0 when every message was read; 1 when a message or the
expectations could not be read or the policy failed; 2 for usage errors.

Examples:

  corriere bounce eval ../shared/bounces
  corriere bounce eval --folds 5 --holdout 0 --misses ../shared/bounces
  corriere bounce eval --rules ./rules-next ../shared/bounces`

func bounceEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bounce eval", "bounce eval [--scripts DIR] [--rules DIR] [--folds N --holdout K] [--misses] DIR", evalDescription)
	scripts := fs.String("scripts", "./scripts", "hook scripts `directory` (on_bounce.lua)")
	rules := fs.String("rules", "./rules", "policy data `directory` (bounces.lua)")
	folds := fs.Int("folds", 5, "number of cross-validation `folds`")
	holdout := fs.Int("holdout", -1, "`fold` kept out of sight: only its agreement is printed (-1: none)")
	misses := fs.Bool("misses", false, "list every disagreement of the folds in sight")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "corriere bounce eval: name one corpus folder (expected.tsv and mail/)")
		return 2
	}
	if *folds < 1 || *holdout >= *folds || *holdout < -1 {
		fmt.Fprintf(stderr, "corriere bounce eval: --holdout must be -1 or a fold from 0 to %d\n", *folds-1)
		return 2
	}
	dir := fs.Arg(0)
	f, err := os.Open(filepath.Join(dir, "expected.tsv"))
	if err != nil {
		fmt.Fprintln(stderr, "corriere bounce eval:", err)
		return 1
	}
	want, err := bounce.ReadExpectations(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, "corriere bounce eval:", err)
		return 1
	}
	e, cleanup, err := readPolicy(fs, scripts, rules, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "corriere bounce eval:", err)
		return 1
	}
	defer cleanup()
	// The rules alone, to name the rule that decided each miss.
	explain, _ := bounce.LoadRulesFile(filepath.Join(*rules, "bounces.lua"))

	byFile := map[string][]bounce.Expectation{}
	var files []string
	for _, w := range want {
		if _, ok := byFile[w.File]; !ok {
			files = append(files, w.File)
		}
		byFile[w.File] = append(byFile[w.File], w)
	}
	sort.Strings(files)
	status := 0
	var all []bounce.Outcome
	for _, name := range files {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "corriere bounce eval:", ctx.Err())
			return 1
		}
		raw, err := os.ReadFile(filepath.Join(dir, "mail", name))
		if err != nil {
			fmt.Fprintln(stderr, "corriere bounce eval:", err)
			status = 1
			continue
		}
		out, err := bounce.EvaluateFile(ctx, raw, e, byFile[name])
		if err != nil {
			fmt.Fprintf(stderr, "corriere bounce eval: %s: %v\n", name, err)
			status = 1
		}
		all = append(all, out...)
	}

	w := bufio.NewWriter(stdout)
	defer w.Flush()
	perFold := make([][]bounce.Outcome, *folds)
	var inSight []bounce.Outcome
	for _, o := range all {
		k := bounce.Fold(o.File, *folds)
		perFold[k] = append(perFold[k], o)
		if k != *holdout {
			inSight = append(inSight, o)
		}
	}
	total := bounce.ScoreOutcomes(all)
	fmt.Fprintf(w, "corpus %s: %d recipients in %d files\n", dir, total.Total, len(files))
	if *folds > 1 {
		for k, outs := range perFold {
			s := bounce.ScoreOutcomes(outs)
			mark := ""
			if k == *holdout {
				mark = "  (held out)"
			}
			fmt.Fprintf(w, "fold %d: %s%s\n", k, ratio(s.Agree, s.Total), mark)
		}
	}
	fmt.Fprintf(w, "all: %s, hard/soft %s\n", ratio(total.Agree, total.Total), ratio(total.HardAgree, total.Total))
	s := total
	if *holdout >= 0 {
		s = bounce.ScoreOutcomes(inSight)
		fmt.Fprintf(w, "in sight (all folds but %d): %s\n", *holdout, ratio(s.Agree, s.Total))
		fmt.Fprintf(w, "held out (fold %d): %s\n", *holdout, ratio(bounce.ScoreOutcomes(perFold[*holdout]).Agree, len(perFold[*holdout])))
	}
	fmt.Fprintf(w, "\n%-16s %8s %9s %8s %9s %7s\n", "category", "expected", "predicted", "correct", "precision", "recall")
	for _, c := range s.Categories {
		fmt.Fprintf(w, "%-16s %8d %9d %8d %8.1f%% %6.1f%%\n", c.Category, c.Expected, c.Predicted, c.Correct, 100*c.Precision(), 100*c.Recall())
	}
	if len(s.Confusions) > 0 {
		fmt.Fprintf(w, "\nconfusions (expected -> classified):\n")
		for _, c := range s.Confusions {
			fmt.Fprintf(w, "%4d  %s -> %s\n", c.Count, c.Want, c.Got)
		}
	}
	if *misses {
		fmt.Fprintf(w, "\nmisses (file, index, expected, classified, deciding rule, status, diagnostic):\n")
		for _, o := range inSight {
			if o.OK() {
				continue
			}
			why := ""
			if explain != nil && o.Got != bounce.Missing {
				why = explain.Explain(&o.Report)
			}
			d := strings.Join(strings.Fields(o.Report.Diagnostic), " ")
			if len(d) > 200 {
				d = d[:200]
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", o.File, o.Index, o.Reason, o.Got, why, o.Report.Status, d)
		}
	}
	return status
}

// ratio formats n/total with its percentage.
func ratio(n, total int) string {
	if total == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d = %.1f%%", n, total, 100*float64(n)/float64(total))
}
