package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The policy shipped with the repository, from this package's directory.
const (
	repoScripts = "../../scripts"
	repoRules   = "../../rules"
	bounceData  = "../../core/bounce/testdata"
	// sharedBounces is the shared corpus next to the repository.
	sharedBounces = "../../../shared/bounces"
)

// classifyRun runs "corriere bounce classify" in-process with the shipped
// policy and returns its exit status, standard output and standard error.
func classifyRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"classify", "--scripts", repoScripts, "--rules", repoRules}, args...)
	status := runBounce(context.Background(), full, strings.NewReader(stdin), &out, &errOut)
	return status, out.String(), errOut.String()
}

// TestBounceClassifyGolden checks the command against the golden files of
// core/bounce, which name the file by its base name.
func TestBounceClassifyGolden(t *testing.T) {
	emls, err := filepath.Glob(filepath.Join(bounceData, "*.eml"))
	if err != nil || len(emls) == 0 {
		t.Fatalf("no messages in %s: %v", bounceData, err)
	}
	for _, eml := range emls {
		t.Run(filepath.Base(eml), func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(eml, ".eml") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			var want strings.Builder
			for _, line := range strings.Split(strings.TrimRight(string(golden), "\n"), "\n") {
				if line == "" {
					continue
				}
				want.WriteString(filepath.Join(bounceData, line) + "\n")
			}
			status, out, errOut := classifyRun(t, "", eml)
			if status != 0 || errOut != "" {
				t.Errorf("status %d, stderr %q", status, errOut)
			}
			if out != want.String() {
				t.Errorf("output:\n%s\nwant:\n%s", out, want.String())
			}
		})
	}
}

// TestBounceClassifyCorpus checks known messages of the shared corpus of
// real bounces: DSNs, a success DSN, a feedback report, an auto-reply, and
// messages that are not bounces.
func TestBounceClassifyCorpus(t *testing.T) {
	mail := filepath.Join(sharedBounces, "mail")
	if _, err := os.Stat(mail); err != nil {
		t.Skipf("shared bounce corpus not available: %v", err)
	}
	tests := []struct {
		file string
		want []string // file, recipient, category, hard|soft, status[, feedback type]
	}{
		{"lhost-postfix-02.eml", []string{
			"filtered@example.co.jp\tuserunknown\thard\t5.2.1",
			"userunknown@example.co.jp\tuserunknown\thard\t5.1.1",
		}},
		{"lhost-postfix-01.eml", []string{"r@p351355.pool.example.ne.jp\tmailererror\tsoft\t5.1.1"}},
		{"lhost-amazonses-12.eml", []string{"success@simulator.amazonses.com\tdelivered\tsoft\t2.6.0"}},
		{"arf-01.eml", []string{"redacted@example.net\tfeedback\thard\t-\tabuse"}},
		{"rfc3834-02.eml", []string{"nekonyaan@example.org\tvacation\tsoft\t-"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(mail, tt.file)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("not in this copy of the corpus: %v", err)
			}
			status, out, errOut := classifyRun(t, "", path)
			if status != 0 || errOut != "" {
				t.Errorf("status %d, stderr %q", status, errOut)
			}
			var want strings.Builder
			for _, w := range tt.want {
				want.WriteString(path + "\t" + w + "\n")
			}
			if out != want.String() {
				t.Errorf("output:\n%s\nwant:\n%s", out, want.String())
			}
			for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
				cols := strings.Split(line, "\t")
				if feedback := cols[2] == "feedback"; feedback && len(cols) != 6 || !feedback && len(cols) != 5 {
					t.Errorf("%d columns in %q", len(cols), line)
				}
			}
		})
	}

	t.Run("not-bounce", func(t *testing.T) {
		dir := filepath.Join(sharedBounces, "not-bounce")
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no not-bounce samples: %v", err)
		}
		status, out, errOut := classifyRun(t, "", dir)
		if status != 0 || out != "" || errOut != "" {
			t.Errorf("status %d, stdout %q, stderr %q; want 0 and nothing printed", status, out, errOut)
		}
	})
}

// TestBounceClassifyFolderAndStdin: a folder is classified file by file in
// name order, skipping subfolders and dot files; "-" reads standard input.
func TestBounceClassifyFolderAndStdin(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join(bounceData, "vacation.eml"), filepath.Join(dir, "b.eml"))
	copyFile(t, filepath.Join(bounceData, "arf.eml"), filepath.Join(dir, "a.eml"))
	copyFile(t, filepath.Join(bounceData, "dsn-postfix.eml"), filepath.Join(dir, ".hidden.eml"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(bounceData, "qmail.eml"), filepath.Join(dir, "sub", "c.eml"))

	status, out, errOut := classifyRun(t, "", dir)
	want := filepath.Join(dir, "a.eml") + "\tgrace@provider.example\tfeedback\thard\t-\tabuse\n" +
		filepath.Join(dir, "b.eml") + "\theidi@receiver.example\tvacation\tsoft\t-\n"
	if status != 0 || errOut != "" || out != want {
		t.Errorf("folder: status %d, stderr %q, output:\n%s\nwant:\n%s", status, errOut, out, want)
	}

	raw, err := os.ReadFile(filepath.Join(bounceData, "exchange-ndr.eml"))
	if err != nil {
		t.Fatal(err)
	}
	status, out, errOut = classifyRun(t, string(raw), "-")
	if want := "-\tfrank@receiver.example\tuserunknown\thard\t5.1.1\n"; status != 0 || errOut != "" || out != want {
		t.Errorf("stdin: status %d, stderr %q, output %q, want %q", status, errOut, out, want)
	}
}

// TestBounceClassifyExitStatus: files that cannot be read or parsed, and a
// failing policy, exit 1 after classifying the other files; usage errors
// exit 2.
func TestBounceClassifyExitStatus(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.eml")
	empty := filepath.Join(dir, "empty.eml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(bounceData, "vacation.eml")

	status, out, errOut := classifyRun(t, "", missing, good, empty)
	if status != 1 {
		t.Errorf("status %d, want 1", status)
	}
	if want := good + "\theidi@receiver.example\tvacation\tsoft\t-\n"; out != want {
		t.Errorf("the readable file was not classified: output %q, want %q", out, want)
	}
	for _, name := range []string{missing, empty} {
		if !strings.Contains(errOut, "corriere bounce classify: "+name+": ") {
			t.Errorf("stderr does not name %s:\n%s", name, errOut)
		}
	}

	if os.Geteuid() != 0 {
		unreadable := filepath.Join(dir, "unreadable.eml")
		copyFile(t, good, unreadable)
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
		if status, _, errOut := classifyRun(t, "", unreadable); status != 1 || !strings.Contains(errOut, unreadable) {
			t.Errorf("unreadable file: status %d, stderr %q", status, errOut)
		}
	}

	// An on_bounce hook that fails for one recipient: that line reads
	// "unknown", the others are classified, and the status is 1.
	scripts := filepath.Join(dir, "scripts")
	copyTree(t, repoScripts, scripts)
	onBounce, err := os.ReadFile(filepath.Join(scripts, "on_bounce.lua"))
	if err != nil {
		t.Fatal(err)
	}
	failing := strings.Replace(string(onBounce), "function on_bounce(report)\n",
		"function on_bounce(report)\n  if report.recipient == \"alice@receiver.example\" then error(\"test failure\") end\n", 1)
	if failing == string(onBounce) {
		t.Fatal("scripts/on_bounce.lua has changed shape; update this test")
	}
	if err := os.WriteFile(filepath.Join(scripts, "on_bounce.lua"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(bounceData, "dsn-postfix.eml")
	var stdout, stderr bytes.Buffer
	status = runBounce(context.Background(), []string{"classify", "--scripts", scripts, "--rules", repoRules, dsn}, nil, &stdout, &stderr)
	want := dsn + "\talice@receiver.example\tunknown\tsoft\t5.1.1\n" + dsn + "\tbob@receiver.example\tmailboxfull\tsoft\t4.2.2\n"
	if status != 1 || stdout.String() != want || !strings.Contains(stderr.String(), dsn+": ") || !strings.Contains(stderr.String(), "test failure") {
		t.Errorf("failing hook: status %d, output:\n%s\nwant:\n%s\nstderr: %s", status, stdout.String(), want, stderr.String())
	}

	// A policy that does not load.
	if status, _, errOut := classifyRun(t, "", "--scripts", filepath.Join(dir, "nowhere"), good); status != 1 || errOut == "" {
		t.Errorf("missing scripts: status %d, stderr %q", status, errOut)
	}

	usage := []struct {
		args []string
		want int
	}{
		{[]string{"classify"}, 2},
		{[]string{"classify", "--no-such-flag", good}, 2},
		{[]string{"sort", good}, 2},
		{[]string{"classify", "--help"}, 0},
		{[]string{"--help"}, 0},
		{nil, 0},
	}
	for _, u := range usage {
		var stdout, stderr bytes.Buffer
		if got := runBounce(context.Background(), u.args, nil, &stdout, &stderr); got != u.want {
			t.Errorf("corriere bounce %s: status %d, want %d (stderr %q)", strings.Join(u.args, " "), got, u.want, stderr.String())
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
