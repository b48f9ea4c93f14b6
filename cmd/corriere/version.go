package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; without it the module version and
// the commit recorded by the Go toolchain are shown.
var version = ""

func init() {
	register(command{
		name:    "version",
		summary: "print the version, the commit it was built from and the Go version (also --version)",
		run: func(_ context.Context, args []string) int {
			fs := newFlagSet("version", "version", "Prints the version of this binary, the commit it was built from and the Go version.")
			if status, ok := parseFlags(fs, args); !ok {
				return status
			}
			printVersion(os.Stdout)
			return 0
		},
	})
}

// printVersion writes one line: "corriere VERSION (commit REV[, modified], GOVERSION)".
func printVersion(w io.Writer) {
	v, commit, modified := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	detail := ""
	if commit != "" {
		detail = "commit " + commit[:min(12, len(commit))]
		if modified {
			detail += ", modified"
		}
		detail += ", "
	}
	fmt.Fprintf(w, "corriere %s (%s%s)\n", v, detail, runtime.Version())
}
