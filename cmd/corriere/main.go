// Command corriere is the Corriere mail transfer agent: one binary whose
// subcommands run the server, the simulator and demo, and the tools that
// operators and deliverability engineers use (rules, queue, dkim, bounce).
//
// Each subcommand lives in its own file and registers itself in init; this
// file only dispatches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	// name is the word after "corriere".
	name string
	// summary is one line for the command list.
	summary string
	// run executes the command with the arguments after its name and
	// returns the exit status. ctx ends on SIGINT or SIGTERM.
	run func(ctx context.Context, args []string) int
}

var commands = map[string]command{}

// register adds a subcommand; called from init functions.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("corriere: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(context.Background(), []string{"--help"})
			}
		}
		usage(stdout)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || (args[0] == "version" && len(args) == 1) {
		printVersion(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "corriere: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Corriere is a scriptable mail transfer agent for smarthosts.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: corriere <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'corriere <command> --help' for the flags of a command and their defaults.")
}

// newFlagSet returns a flag set whose --help output starts with the
// command's usage line and a description that teaches what it does.
func newFlagSet(name, usageLine, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: corriere %s\n\n%s\n\nFlags:\n", usageLine, strings.TrimSpace(description))
		printFlags(w, fs)
	}
	return fs
}

// printFlags lists flags GNU-style (--name), each with its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// parseFlags parses args and maps -h/--help to exit status 0 and errors to 2.
// It returns ok=false when the caller should return status. A bad flag is
// reported on one line, with the closest flag name when there is one,
// rather than followed by the whole help.
//
// Every command takes --config: the settings of a corriere serve
// configuration file that the command also has (--spool, --admin,
// --scripts...) apply to it, unless given on the command line.
func parseFlags(fs *flag.FlagSet, args []string) (status int, ok bool) {
	if fs.Lookup("config") == nil {
		fs.String("config", "", "configuration `file` of corriere serve (\"name = value\" lines); the settings this command also has apply, flags given here win; relative paths in it are relative to the file")
	}
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if config := fs.Lookup("config").Value.String(); err == nil && config != "" {
		if err := applyConfigFile(fs, config); err != nil {
			fmt.Fprintf(out, "corriere %s: %v\n", fs.Name(), err)
			return 2, false
		}
	}
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0, false
	}
	fmt.Fprintf(out, "corriere %s: %s%s; see 'corriere %s --help'\n", fs.Name(), flagError(err), suggestFlag(fs, err), fs.Name())
	return 2, false
}

// flagError writes the flag package's message with the GNU-style "--"
// the help shows.
func flagError(err error) string {
	return strings.NewReplacer(": -", ": --", "flag -", "flag --").Replace(err.Error())
}

// suggestFlag returns " (did you mean --x?)" for an undefined flag close
// to a defined one, and "" otherwise.
func suggestFlag(fs *flag.FlagSet, err error) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, undefined) {
		return ""
	}
	return suggestName(fs, strings.TrimPrefix(msg[len(undefined):], "-"))
}

// suggestName returns " (did you mean --x?)" when a flag of fs is close
// to typed, and "" otherwise.
func suggestName(fs *flag.FlagSet, typed string) string {
	best, bestDist := "", len(typed)/2+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(typed, f.Name); d < bestDist || (d == bestDist && best == "" && strings.HasPrefix(f.Name, typed)) {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return " (did you mean --" + best + "?)"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

// Set appends a value.
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
