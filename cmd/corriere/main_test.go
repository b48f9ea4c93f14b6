package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestFlagErrorsOnOneLine checks that a mistyped flag is reported in one
// line that names the command, suggests the closest flag and points to
// --help, instead of the whole help.
func TestFlagErrorsOnOneLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"typo", []string{"check", "--scirpts", "x"}, "corriere rules check: flag provided but not defined: --scirpts (did you mean --scripts?); see 'corriere rules check --help'\n"},
		{"nothing close", []string{"check", "--frobnicate"}, "corriere rules check: flag provided but not defined: --frobnicate; see 'corriere rules check --help'\n"},
		{"missing value", []string{"check", "--rules"}, "corriere rules check: flag needs an argument: --rules; see 'corriere rules check --help'\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status := runRules(context.Background(), tc.args, nil, &stdout, &stderr)
			if status != 2 || stderr.String() != tc.want {
				t.Errorf("status %d, stderr %q; want 2, %q", status, stderr.String(), tc.want)
			}
		})
	}
}

// TestHelpStillPrintsTheFlags checks --help prints the usage and every
// flag, and exits 0.
func TestHelpStillPrintsTheFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if status := runRules(context.Background(), []string{"check", "--help"}, nil, &stdout, &stderr); status != 0 ||
		!strings.Contains(stderr.String(), "Usage: corriere rules check") || !strings.Contains(stderr.String(), "--scripts") {
		t.Errorf("status %d, help:\n%s", status, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var stdout, stderr bytes.Buffer
		if status := run(args, &stdout, &stderr); status != 0 || !strings.HasPrefix(stdout.String(), "corriere ") || !strings.Contains(stdout.String(), "go1.") {
			t.Errorf("%v: status %d, output %q", args, status, stdout.String())
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"mx-port", "mx-port", 0}, {"mx-prot", "mx-port", 2}, {"spol", "spool", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestMain runs this test binary as corriere itself when its first argument
// is not a flag (go test always passes -test.* flags first), as in
// "corriere.test serve --listen ...": the tests that need a corriere
// process (kill -9, a full disk) start the binary they run in, which holds
// the same main package, instead of building one.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		main()
	}
	os.Exit(m.Run())
}
