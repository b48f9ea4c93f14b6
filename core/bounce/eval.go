package bounce

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"

	"corriere/core/policy"
)

// Expectation is the expected classification of one failed recipient of a
// labelled bounce: a line of a corpus's expected.tsv (the format of the
// shared Sisimai corpus: file, index, reason, status, replycode,
// hardbounce, feedbacktype, then free columns).
type Expectation struct {
	// File is the message's file name, relative to the corpus's mail/.
	File string
	// Index is the recipient's position among the file's failures, from 1.
	Index int
	// Reason is the expected category.
	Reason string
	// Status is the expected enhanced status code.
	Status string
	// Hard is the expected hard/soft decision.
	Hard bool
}

// ReadExpectations reads an expected.tsv: one tab-separated line per
// recipient, a header line starting with "file" ignored. Lines with fewer
// than six fields or an index that is not a number are errors, named by
// line number.
func ReadExpectations(r io.Reader) ([]Expectation, error) {
	var out []Expectation
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "file\t") {
			continue
		}
		c := strings.Split(text, "\t")
		if len(c) < 6 {
			return nil, fmt.Errorf("bounce: expectations line %d: %d fields, want at least 6", line, len(c))
		}
		idx, err := strconv.Atoi(c[1])
		if err != nil || idx < 1 {
			return nil, fmt.Errorf("bounce: expectations line %d: index %q is not a positive number", line, c[1])
		}
		out = append(out, Expectation{File: c[0], Index: idx, Reason: c[2], Status: c[3], Hard: c[5] == "true"})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bounce: read expectations: %w", err)
	}
	return out, nil
}

// Fold assigns a file to one of n folds by a stable hash of its name
// (FNV-1a), so that cross-validation splits a corpus the same way on every
// machine and every run.
func Fold(file string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(file))
	return int(h.Sum32() % uint32(n))
}

// Outcome is the classification of one expected recipient.
type Outcome struct {
	Expectation
	// Got is the category decided, or "(missing)" when the message
	// reported fewer recipients than expected.
	Got string
	// GotHard is the hard/soft decision.
	GotHard bool
	// Report is the parsed failure (zero when missing).
	Report policy.BounceReport
}

// OK reports whether the category agrees with the expectation.
func (o *Outcome) OK() bool { return o.Got == o.Reason }

// Missing is the category of an expected recipient the parser did not
// report.
const Missing = "(missing)"

// EvaluateFile classifies one labelled message with p and pairs its
// results with the expectations of that file, in index order. A parse or
// policy error is returned along with the outcomes it allowed.
func EvaluateFile(ctx context.Context, raw []byte, p policy.Policy, want []Expectation) ([]Outcome, error) {
	results, err := Classify(ctx, raw, p)
	sorted := append([]Expectation(nil), want...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Index < sorted[j].Index })
	out := make([]Outcome, 0, len(sorted))
	for _, w := range sorted {
		o := Outcome{Expectation: w, Got: Missing}
		if i := w.Index - 1; i < len(results) {
			o.Got = string(results[i].Verdict.Category)
			o.GotHard = results[i].Verdict.Hard
			o.Report = results[i].Report
		}
		out = append(out, o)
	}
	return out, err
}

// CategoryScore is the precision and recall of one category.
type CategoryScore struct {
	Category string
	// Expected counts recipients whose expected reason is Category,
	// Predicted those classified as Category, and Correct both.
	Expected, Predicted, Correct int
}

// Precision is Correct/Predicted, or 1 when nothing was predicted.
func (s CategoryScore) Precision() float64 {
	if s.Predicted == 0 {
		return 1
	}
	return float64(s.Correct) / float64(s.Predicted)
}

// Recall is Correct/Expected, or 1 when nothing was expected.
func (s CategoryScore) Recall() float64 {
	if s.Expected == 0 {
		return 1
	}
	return float64(s.Correct) / float64(s.Expected)
}

// Confusion counts recipients expected as Want and classified as Got.
type Confusion struct {
	Want, Got string
	Count     int
}

// Score summarises a set of outcomes.
type Score struct {
	Total, Agree, HardAgree int
	// Categories holds one entry per category expected or predicted, by
	// category name.
	Categories []CategoryScore
	// Confusions holds the disagreements grouped by pair, most frequent
	// first.
	Confusions []Confusion
}

// Rate is the share of recipients whose category agrees (0 for none).
func (s *Score) Rate() float64 {
	if s.Total == 0 {
		return 0
	}
	return float64(s.Agree) / float64(s.Total)
}

// ScoreOutcomes computes agreement, per-category precision and recall, and
// the confusion pairs of outcomes. Complaints count as hard, as Corriere
// suppresses the complainer.
func ScoreOutcomes(outcomes []Outcome) Score {
	var s Score
	cats := map[string]*CategoryScore{}
	cat := func(name string) *CategoryScore {
		c := cats[name]
		if c == nil {
			c = &CategoryScore{Category: name}
			cats[name] = c
		}
		return c
	}
	conf := map[[2]string]int{}
	for _, o := range outcomes {
		s.Total++
		cat(o.Reason).Expected++
		cat(o.Got).Predicted++
		if o.OK() {
			s.Agree++
			cat(o.Reason).Correct++
		} else {
			conf[[2]string{o.Reason, o.Got}]++
		}
		if o.GotHard == (o.Hard || o.Reason == "feedback") {
			s.HardAgree++
		}
	}
	for _, c := range cats {
		s.Categories = append(s.Categories, *c)
	}
	sort.Slice(s.Categories, func(i, j int) bool {
		a, b := s.Categories[i], s.Categories[j]
		if a.Expected != b.Expected {
			return a.Expected > b.Expected
		}
		return a.Category < b.Category
	})
	for k, n := range conf {
		s.Confusions = append(s.Confusions, Confusion{Want: k[0], Got: k[1], Count: n})
	}
	sort.Slice(s.Confusions, func(i, j int) bool {
		a, b := s.Confusions[i], s.Confusions[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Want != b.Want {
			return a.Want < b.Want
		}
		return a.Got < b.Got
	})
	return s
}
