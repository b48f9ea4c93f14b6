package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"corriere"
	"corriere/core/luart"
)

func init() {
	register(command{name: "init", summary: "write an editable policy, a commented corriere.conf and a systemd unit into a new directory", run: runInit})
}

const initHelp = `
Writes what corriere serve needs into DIR, which must be new or empty:

  DIR/scripts/         the hook scripts (classify, route, shape, rewrite,
                       on_response, on_bounce), the binary's defaults
  DIR/rules/           the policy data: providers, bounce patterns, pools,
                       tenants, DKIM keys
  DIR/corriere.conf    every setting of corriere serve with its default,
                       commented out except the paths; relative paths in it
                       are relative to DIR
  DIR/corriere.service a systemd unit that runs serve with this configuration

The policy is the one built into this binary, ready to edit. It contains a
demo tenant ("example", whose password is public) and demo DKIM keys (public
too): replace or delete them before the server is reachable by others.
corriere serve warns at start while they are in use.

Then:
  corriere rules check --config DIR/corriere.conf
  corriere serve --config DIR/corriere.conf

Examples:
  corriere init /etc/corriere
  corriere init ./etc
`

func runInit(_ context.Context, args []string) int {
	return initCommand(args, os.Stdout, os.Stderr)
}

func initCommand(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("init", "init DIR", initHelp)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "/usr/local/bin/corriere", "`path` of the installed binary, for the systemd unit")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "corriere init: give one directory, such as /etc/corriere; see 'corriere init --help'")
		return 2
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "corriere init:", err)
		return 1
	}
	if err := writeInit(dir, *binary); err != nil {
		fmt.Fprintln(stderr, "corriere init:", err)
		return 1
	}
	conf := filepath.Join(dir, "corriere.conf")
	fmt.Fprintf(stdout, `Wrote the policy (%[1]s/scripts, %[1]s/rules), %[2]s and %[1]s/corriere.service.

The policy has a demo tenant ("example") and demo DKIM keys, both public:
replace or delete them before the server is reachable by others.

Next:
  corriere rules check --config %[2]s
  corriere serve --config %[2]s
`, dir, conf)
	return 0
}

// writeInit writes the policy, the configuration and the unit into dir,
// which must be new or empty.
func writeInit(dir, binary string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty; give a new or empty directory", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for name, src := range map[string]fs.FS{"scripts": corriere.Scripts(), "rules": corriere.Rules()} {
		if err := copyPolicy(filepath.Join(dir, name), src); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "corriere.conf"), []byte(configTemplate()), 0o640); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "corriere.service"), []byte(systemdUnit(dir, binary)), 0o644)
}

// copyPolicy writes the files of src under to; private keys (*.pem) are
// readable by their owner only, as corriere dkim keygen writes them.
func copyPolicy(to string, src fs.FS) error {
	return fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(to, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		data, err := fs.ReadFile(src, path)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o640)
		if strings.HasSuffix(path, ".pem") {
			mode = 0o600
		}
		return os.WriteFile(target, data, mode)
	})
}

// configTemplate is a corriere.conf listing every setting of serve with
// its help and default: the paths are set, relative to the file, and the
// rest is commented out, so that the file documents what can be set.
func configTemplate() string {
	var b strings.Builder
	b.WriteString(`# corriere.conf: the settings of corriere serve, one "name = value" per line.
# Repeat a line for a repeatable setting. A flag given on the command line
# wins over this file. Relative paths are relative to this file's directory.
# Every corriere command reads this file with --config.

`)
	set := map[string]string{"spool": "spool", "scripts": "scripts", "rules": "rules"}
	fs, _ := newServeFlags()
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		for _, line := range wrap(usage, 74) {
			b.WriteString("# " + line + "\n")
		}
		if v, ok := set[f.Name]; ok {
			fmt.Fprintf(&b, "%s = %s\n\n", f.Name, v)
			return
		}
		fmt.Fprintf(&b, "# %s = %s\n\n", f.Name, f.DefValue)
	})
	return b.String()
}

// wrap splits text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// systemdUnit runs serve with the configuration in dir as an unprivileged
// user that may still bind port 25.
func systemdUnit(dir, binary string) string {
	return fmt.Sprintf(`# corriere.service: install with
#   useradd --system --home %[1]s --shell /usr/sbin/nologin corriere
#   chown -R corriere: %[1]s
#   cp %[1]s/corriere.service /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now corriere
# systemctl reload corriere re-reads the policy (SIGHUP); a stop is graceful.
[Unit]
Description=Corriere mail transfer agent
Documentation=corriere serve --help
After=network-online.target
Wants=network-online.target

[Service]
User=corriere
Group=corriere
ExecStart=%[2]s serve --config %[1]s/corriere.conf
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
# Bind port 25 without running as root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
ReadWritePaths=%[1]s
LimitNOFILE=65536
# Let in-flight deliveries finish on stop.
TimeoutStopSec=90

[Install]
WantedBy=multi-user.target
`, dir, binary)
}

// policyPresent reports, before anything is created on disk, a policy
// directory that does not exist, and says how to get one.
func policyPresent(scripts, rules string) error {
	for _, d := range []string{scripts, rules} {
		fi, err := os.Stat(d)
		if err == nil && fi.IsDir() {
			continue
		}
		abs, _ := filepath.Abs(d)
		return fmt.Errorf(`no policy: %s is not a directory (%s).
Write an editable copy of the default policy and a configuration with
  corriere init /etc/corriere
then run
  corriere serve --config /etc/corriere/corriere.conf
or point --scripts and --rules at an existing policy`, d, abs)
	}
	return nil
}

// readPolicy loads the policy of scripts and rules for a tool that only
// reads it, falling back to the built-in one as builtInPolicyIfAbsent does;
// cleanup removes the copy once the engine is no longer used.
func readPolicy(flags *flag.FlagSet, scripts, rules *string, stderr io.Writer) (e *luart.Engine, cleanup func(), err error) {
	cleanup, err = builtInPolicyIfAbsent(flags, scripts, rules, stderr)
	if err != nil {
		return nil, cleanup, err
	}
	e, err = luart.New(luart.Options{ScriptsDir: *scripts, RulesDir: *rules})
	if err != nil {
		cleanup()
		return nil, func() {}, errors.New(policyError(err))
	}
	return e, cleanup, nil
}

// builtInPolicyIfAbsent points scripts and rules at a temporary copy of
// the policy built into the binary when neither flag was given (nor set by
// --config) and the default directories do not exist here, and says so on
// stderr: tools that only read the policy work from any directory. The
// returned cleanup removes the copy.
func builtInPolicyIfAbsent(flags *flag.FlagSet, scripts, rules *string, stderr io.Writer) (cleanup func(), err error) {
	cleanup = func() {}
	if flagGiven(flags, "scripts") || flagGiven(flags, "rules") || policyPresent(*scripts, *rules) == nil {
		return cleanup, nil
	}
	dir, err := os.MkdirTemp("", "corriere-policy-")
	if err != nil {
		return cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	for name, src := range map[string]fs.FS{"scripts": corriere.Scripts(), "rules": corriere.Rules()} {
		if err := copyPolicy(filepath.Join(dir, name), src); err != nil {
			cleanup()
			return func() {}, fmt.Errorf("copy the built-in policy: %w", err)
		}
	}
	*scripts, *rules = filepath.Join(dir, "scripts"), filepath.Join(dir, "rules")
	fmt.Fprintf(stderr, "corriere %s: no ./scripts and ./rules here: using the policy built into the binary (corriere init DIR writes an editable copy)\n", flags.Name())
	return cleanup, nil
}
