package bounce

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"corriere/core/policy"
)

// rulesFile is rules/bounces.lua, from this package's directory.
const rulesFile = "../../rules/bounces.lua"

// sharedDir is /work/shared next to the repository.
const sharedDir = "../../../shared"

// rulesPolicy is a policy whose OnBounce is the shipped rules, as the Lua
// default on_bounce hook is.
type rulesPolicy struct {
	policy.Default
	rules *Rules
}

func (p *rulesPolicy) OnBounce(_ context.Context, r *policy.BounceReport) (policy.BounceVerdict, error) {
	return p.rules.Classify(r), nil
}

func loadTestRules(t testing.TB) *Rules {
	t.Helper()
	r, err := LoadRulesFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// expectedRow is one line of expected.tsv.
type expectedRow struct {
	file, reason, status, feedbackType string
	index                              int
	hard                               bool
}

func readExpected(t *testing.T, path string) map[string][]expectedRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string][]expectedRow{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 || c[0] == "file" {
			continue
		}
		var idx int
		fmt.Sscan(c[1], &idx)
		rows[c[0]] = append(rows[c[0]], expectedRow{file: c[0], index: idx, reason: c[2], status: c[3], hard: c[5] == "true", feedbackType: c[6]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, rs := range rows {
		sort.Slice(rs, func(i, j int) bool { return rs[i].index < rs[j].index })
	}
	return rows
}

// isPseudoStatus reports whether st is one of Sisimai's own codes for "the
// bounce gave no status" (X.0.9xx).
func isPseudoStatus(st string) bool {
	return st == "" || strings.HasPrefix(st[1:], ".0.9")
}

// TestCorpusAgreement runs the shared corpus of real bounces through Parse
// and the shipped rules and measures how often the reason agrees with the
// expected one. Corriere differs from Sisimai on purpose in one respect: a
// complaint is hard (the complainer is suppressed), where Sisimai calls it
// soft.
func TestCorpusAgreement(t *testing.T) {
	dir := filepath.Join(sharedDir, "bounces")
	if _, err := os.Stat(filepath.Join(dir, "expected.tsv")); err != nil {
		t.Skipf("bounce corpus not available: %v", err)
	}
	rules := loadTestRules(t)
	pol := &rulesPolicy{rules: rules}
	expected := readExpected(t, filepath.Join(dir, "expected.tsv"))
	files := make([]string, 0, len(expected))
	for f := range expected {
		files = append(files, f)
	}
	sort.Strings(files)

	var total, reasonOK, hardOK, statusTotal, statusOK int
	var mismatches []string
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join(dir, "mail", name))
		if err != nil {
			t.Fatal(err)
		}
		results, err := Classify(context.Background(), raw, pol)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for i, want := range expected[name] {
			total++
			if i >= len(results) {
				mismatches = append(mismatches, fmt.Sprintf("%s\t%d\t%s\t(missing)", name, want.index, want.reason))
				continue
			}
			got := results[i]
			wantHard := want.hard || want.reason == "feedback"
			if string(got.Verdict.Category) == want.reason {
				reasonOK++
			} else {
				d := got.Report.Diagnostic
				if len(d) > 160 {
					d = d[:160]
				}
				mismatches = append(mismatches, fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s", name, want.index, want.reason, rules.Explain(&got.Report), got.Report.Status, d))
			}
			if got.Verdict.Hard == wantHard {
				hardOK++
			}
			if !isPseudoStatus(want.status) {
				statusTotal++
				if got.Report.Status == want.status {
					statusOK++
				}
			}
		}
	}
	reasonRate := float64(reasonOK) / float64(total)
	hardRate := float64(hardOK) / float64(total)
	t.Logf("reason agreement: %d/%d = %.1f%%", reasonOK, total, 100*reasonRate)
	t.Logf("hard/soft agreement: %d/%d = %.1f%%", hardOK, total, 100*hardRate)
	t.Logf("status agreement (rows with a real status): %d/%d = %.1f%%", statusOK, statusTotal, 100*float64(statusOK)/float64(statusTotal))
	if len(mismatches) > 0 {
		t.Logf("mismatches (file, index, expected, deciding rule, status, diagnostic):\n%s", strings.Join(mismatches, "\n"))
	}
	if reasonRate < 0.95 {
		t.Errorf("reason agreement %.1f%% is below 95%%", 100*reasonRate)
	}
	if hardRate < 0.90 {
		t.Errorf("hard/soft agreement %.1f%% is below 90%%", 100*hardRate)
	}
}

// TestNotBounce checks that ordinary messages yield nothing.
func TestNotBounce(t *testing.T) {
	dir := filepath.Join(sharedDir, "bounces", "not-bounce")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) == 0 {
		t.Skipf("no messages in %s", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Kind != "" || len(r.Failures) > 0 {
			t.Errorf("%s: Kind %q with %d failures, want none", filepath.Base(f), r.Kind, len(r.Failures))
		}
	}
}
