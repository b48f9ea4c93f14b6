package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"corriere/core/bounce"
	"corriere/core/policy"
)

func init() {
	register(command{
		name:    "bounce",
		summary: "classify bounce messages offline, as the bounce listener does",
		run: func(ctx context.Context, args []string) int {
			return runBounce(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		},
	})
}

const bounceUsage = `Usage: corriere bounce <classify|eval> [flags]

Bounces, feedback reports and automatic replies that come back to the node
are read into one report per recipient and classified by the policy's
on_bounce hook (scripts/on_bounce.lua with the patterns of rules/bounces.lua).

  classify  read raw messages from files or folders and print one line per
            recipient: file, recipient, category, hard|soft, status; the
            same code path as the live listener, without the network
  eval      classify a labelled corpus (expected.tsv + mail/) and print the
            agreement, per-category precision and recall and the confusions,
            with cross-validation folds for whoever edits the rules

Run 'corriere bounce <subcommand> --help' for its flags.
`

func runBounce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, bounceUsage)
		return 0
	}
	switch args[0] {
	case "classify":
		return bounceClassify(ctx, args[1:], stdin, stdout, stderr)
	case "eval":
		return bounceEval(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "corriere bounce: unknown subcommand %q\n\n%s", args[0], bounceUsage)
		return 2
	}
}

const classifyDescription = `
Read raw bounce messages (one message per file, as saved from a mailbox or
the bounce listener) and classify them exactly as the running node does:
the message is parsed into one report per recipient (a standard DSN, a
bounce in prose, an ARF feedback report or an automatic reply), and each
report goes through the on_bounce hook of --scripts, which by default hands
it to the pattern table in --rules/bounces.lua. Nothing is sent and nothing
is suppressed; no network is needed.

Output: one tab-separated line per recipient the message reports on:

  file       the path as given (FILE, or FOLDER/name; "-" for standard input)
  recipient  the address the report is about
  category   the reason, in the Sisimai taxonomy: userunknown, mailboxfull,
             blocked, spamdetected, expired, ... as decided by on_bounce;
             "onhold" when rules/bounces.lua recognises nothing, "undefined"
             when the bounce says nothing; "unknown" when the hook failed.
             Feedback reports print "feedback", automatic replies
             "vacation", success notifications "delivered".
  hard|soft  hard: the address is dead and the live node suppresses it
             (feedback reports are hard too: the person asked for no more
             mail); soft: it may be mailed again
  status     the enhanced status code the bounce gives (5.1.1), or "-"
  type       feedback reports only: the feedback type (abuse, fraud, ...)

A message that is not a bounce prints no line. A folder argument classifies
every regular file directly inside it, in name order (not subfolders, not
names starting with a dot).

Exit status: 0 when every file was read and classified; 1 when a file could
not be read or parsed, or the policy failed on it (the error goes to
standard error with the file name, and the other files are still
classified; a recipient the hook failed on prints category "unknown"); 2 for
usage errors.

To test a change to rules/bounces.lua, classify a folder of saved bounces
before and after the change and compare:

  corriere bounce classify ./bounces/ > before.tsv
  (edit rules/bounces.lua)
  corriere bounce classify ./bounces/ > after.tsv
  diff before.tsv after.tsv

Examples:

  corriere bounce classify saved/550-user-unknown.eml
  corriere bounce classify --rules ./rules-next ./bounces/
  corriere bounce classify ./bounces/ | awk -F'\t' '$3 == "onhold"'
  corriere bounce classify - < message.eml`

func bounceClassify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("bounce classify", "bounce classify [--scripts DIR] [--rules DIR] FILE|FOLDER|-...", classifyDescription)
	scripts := fs.String("scripts", "./scripts", "hook scripts `directory` (on_bounce.lua)")
	rules := fs.String("rules", "./rules", "policy data `directory` (bounces.lua)")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "corriere bounce classify: name at least one file, folder, or - for standard input")
		return 2
	}
	e, cleanup, err := readPolicy(fs, scripts, rules, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "corriere bounce classify:", err)
		return 1
	}
	defer cleanup()
	c := &classifier{ctx: ctx, policy: e, stdin: stdin, out: bufio.NewWriter(stdout), stderr: stderr}
	for _, arg := range fs.Args() {
		if ctx.Err() != nil {
			c.fail(arg, ctx.Err())
			break
		}
		c.arg(arg)
	}
	c.flush()
	return c.status
}

// classifier prints the classification of every file it is given and
// remembers whether any failed.
type classifier struct {
	ctx    context.Context
	policy policy.Policy
	stdin  io.Reader
	out    *bufio.Writer
	stderr io.Writer
	status int
}

// arg classifies one command-line argument: "-", a file, or a folder.
func (c *classifier) arg(name string) {
	if name == "-" {
		raw, err := io.ReadAll(c.stdin)
		if err != nil {
			c.fail(name, err)
			return
		}
		c.classify(name, raw)
		return
	}
	fi, err := os.Stat(name)
	if err != nil {
		c.fail(name, err)
		return
	}
	if !fi.IsDir() {
		c.file(name)
		return
	}
	entries, err := os.ReadDir(name) // sorted by name
	if err != nil {
		c.fail(name, err)
		return
	}
	for _, de := range entries {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		path := filepath.Join(name, de.Name())
		if de.Type()&os.ModeSymlink != 0 {
			// Follow links to regular files, as naming them would.
			if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
				continue
			}
		} else if !de.Type().IsRegular() {
			continue
		}
		if c.ctx.Err() != nil {
			return
		}
		c.file(path)
	}
}

func (c *classifier) file(path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		c.fail(path, err)
		return
	}
	c.classify(path, raw)
}

// classify prints the lines of one message. When the policy failed on some
// recipients, their lines (category "unknown") are printed as well as the
// error.
func (c *classifier) classify(name string, raw []byte) {
	results, err := bounce.Classify(c.ctx, raw, c.policy)
	for _, r := range results {
		fmt.Fprintln(c.out, bounce.FormatLine(name, r))
	}
	if err != nil {
		c.fail(name, err)
	}
}

// fail reports a file that could not be classified; the output so far is
// flushed first, so that the error appears after the file's lines.
func (c *classifier) fail(name string, err error) {
	c.flush()
	fmt.Fprintf(c.stderr, "corriere bounce classify: %s: %v\n", name, err)
	c.status = 1
}

func (c *classifier) flush() {
	if err := c.out.Flush(); err != nil && c.status == 0 {
		fmt.Fprintln(c.stderr, "corriere bounce classify:", err)
		c.status = 1
	}
}
