package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"corriere/core/admin"
	"corriere/core/dns"
	"corriere/core/extension"
	"corriere/core/luart"
	"corriere/core/plugin"
	"corriere/core/policy"
	"corriere/core/tenant"
)

func init() {
	register(command{
		name:    "rules",
		summary: "check, dry-run and inspect the Lua policy (scripts/ and rules/)",
		run: func(ctx context.Context, args []string) int {
			return runRules(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		},
	})
}

const rulesUsage = `Usage: corriere rules <check|test|status|reload|passwd|apikey> [flags]

The policy is the Lua in --scripts (hooks) and --rules (data tables).

  check    compile and load everything, smoke-call every hook; exit 1 with
           file:line on the first problem
  test     take one message through classify, rewrite, route, shape and
           (with --reply) on_response, and print every decision; nothing is sent
  status   the policy generation, its files, hooks, tenants and providers
           (live from the running node when there is one)
  reload   make the running node reload its policy now
  passwd   read a password on standard input and print the bcrypt hash for
           a rules/tenants/<tenant>.lua file
  apikey   make an API key for a tenant of the HTTP injection API: print the
           key once, and the hash for the tenant file's api_keys

Run 'corriere rules <subcommand> --help' for its flags.
`

func runRules(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, rulesUsage)
		return 0
	}
	switch args[0] {
	case "check":
		return rulesCheck(args[1:], stdout, stderr)
	case "test":
		return rulesTest(ctx, args[1:], stdout, stderr)
	case "status":
		return rulesStatus(args[1:], stdout, stderr)
	case "reload":
		return rulesReload(args[1:], stdout, stderr)
	case "passwd":
		return rulesPasswd(args[1:], stdin, stdout, stderr)
	case "apikey":
		return rulesAPIKey(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "corriere rules: unknown subcommand %q\n\n%s", args[0], rulesUsage)
		return 2
	}
}

func rulesCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules check", "rules check [--scripts DIR] [--rules DIR]", `
Compile and load every policy file exactly as the server does on a reload,
plugins' files included (rules/dkim.lua and the key files it names), and
smoke-call every hook (for every tenant, and shape for every provider).
Prints a summary and exits 0 when the policy would be accepted; prints
file:line: message and exits 1 when it would be refused.`)
	scripts := fs.String("scripts", "./scripts", "hook scripts `directory`")
	rules := fs.String("rules", "./rules", "policy data `directory` (providers, bounces, pools, tenants)")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if err := policyPresent(*scripts, *rules); err != nil {
		fmt.Fprintln(stderr, "corriere rules check:", err)
		return 1
	}
	e, err := loadPolicy(luart.Options{ScriptsDir: *scripts, RulesDir: *rules})
	if err != nil {
		fmt.Fprintln(stderr, policyError(err))
		return 1
	}
	st := e.Status()
	fmt.Fprintf(stdout, "ok: %d files, %d tenants, %d providers\n", len(st.Files), len(st.Tenants), len(st.Providers))
	return 0
}

func rulesStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules status", "rules status [--spool DIR | --scripts DIR --rules DIR]", `
Show the policy: generation, load time, files, where each hook is defined,
per-tenant overrides, tenants and providers.

When a node is running with --spool DIR (default ./data), this asks it over
the admin API and also shows its refused reloads (reload_errors, with the
last file:line error) and each hook's calls, errors and timeouts. Otherwise
it loads the directories locally, as a node would, and shows that (or the
error that would refuse it).`)
	scripts := fs.String("scripts", "./scripts", "hook scripts `directory` (local mode)")
	rules := fs.String("rules", "./rules", "policy data `directory` (local mode)")
	spool := fs.String("spool", "./data", "spool `directory` of the running node to ask")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if c, err := admin.Discover(*spool); err == nil {
		var st luart.Status
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Get(ctx, "/api/policy", &st); err == nil {
			fmt.Fprintf(stdout, "node	%s (live)\n", c.Addr)
			return printPolicyStatus(st, true, stdout, stderr)
		} else {
			fmt.Fprintf(stderr, "note: the node recorded in %s does not answer (%v); loading the directories locally\n", *spool, err)
		}
	}
	e, err := loadPolicy(luart.Options{ScriptsDir: *scripts, RulesDir: *rules})
	if err != nil {
		fmt.Fprintf(stdout, "generation  none: the policy does not load\nerror       %s\n", policyError(err))
		return 1
	}
	return printPolicyStatus(e.Status(), false, stdout, stderr)
}

func printPolicyStatus(st luart.Status, live bool, stdout, stderr io.Writer) int {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "generation\t%d, loaded %s\n", st.Generation, st.LoadedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "directories\t%s, %s\n", st.ScriptsDir, st.RulesDir)
	fmt.Fprintf(w, "reload errors\t%d\n", st.ReloadErrors)
	if st.LastError != "" {
		fmt.Fprintf(w, "last error\t%s (%s)\n", st.LastError, st.LastErrorAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "files\t%s\n", strings.Join(st.Files, "\n\t"))
	fmt.Fprintln(w, "hooks\t")
	for _, h := range st.Hooks {
		over := ""
		if len(h.Overrides) > 0 {
			over = "  overridden for " + strings.Join(h.Overrides, ", ")
		}
		counts := ""
		if live {
			counts = fmt.Sprintf("\tcalls %d, errors %d, timeouts %d", h.Calls, h.Errors, h.Timeouts)
		}
		fmt.Fprintf(w, "  %s\t%s%s%s\n", h.Name, h.Defined, over, counts)
	}
	fmt.Fprintf(w, "tenants\t%s\n", listOrNone(st.Tenants))
	fmt.Fprintf(w, "providers\t%s\n", listOrNone(st.Providers))
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, "corriere rules status:", err)
		return 1
	}
	return 0
}

func rulesReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules reload", "rules reload [--spool DIR]", `
Ask the running node to build a new policy generation from its directories
now (it also does so by itself when a file changes, and on SIGHUP). Prints
the new generation, or the file:line error that refused it; the previous
generation keeps running in that case. Exits 1 when refused.`)
	spool := fs.String("spool", "./data", "spool `directory` of the running node")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	c, err := admin.Discover(*spool)
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules reload:", err)
		return 1
	}
	var res admin.ReloadResult
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Post(ctx, "/api/policy/reload", &res)
	if res.Accepted {
		fmt.Fprintf(stdout, "reloaded: generation %d is current\n", res.Policy.Generation)
		return 0
	}
	if res.Error != "" {
		fmt.Fprintf(stdout, "refused: %s\ngeneration %d keeps running\n", res.Error, res.Policy.Generation)
		return 1
	}
	fmt.Fprintln(stderr, "corriere rules reload:", err)
	return 1
}

func rulesTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules test", "rules test --message FILE.eml --rcpt ADDR [flags]", `
Take one message through the policy as ingest and delivery would, and print
what each hook decides: the classification, the header fields rewrite adds
and removes, the provider of the recipient's MX, the route (pool, source
IP), the shaping limits with the burst the node really enforces, the
warm-up day and cap of the source, and, with --reply, how on_response reads
that reply. Nothing is sent.

The MX is looked up as the node does, with the nameservers of --dns (or of
/etc/resolv.conf), and its most preferred host names the provider from
rules/providers.lua. When the lookup fails, the output says so and what it
assumes instead: give --dns or --mx to see what the node would do.

Example:
  corriere rules test --message order.eml --rcpt mario.rossi@libero.it \
      --tenant example --source 192.0.2.10=out10.example.net \
      --reply "421 4.7.0 Too many connections from your IP"`)
	scripts := fs.String("scripts", "./scripts", "hook scripts `directory`")
	rules := fs.String("rules", "./rules", "policy data `directory` (providers, bounces, pools, tenants)")
	msgFile := fs.String("message", "", "the message: an RFC 5322 `file` (.eml)")
	rcpt := fs.String("rcpt", "", "the envelope recipient `address` to simulate delivery to")
	tenantName := fs.String("tenant", "", "the `tenant` submitting the message (its SMTP AUTH user)")
	sender := fs.String("sender", "", "the envelope sender `address` (default: the From: address)")
	mx := fs.String("mx", "", "the `host` name of the recipient domain's MX (default: looked up in DNS)")
	var nameservers stringList
	fs.Var(&nameservers, "dns", "nameserver `address` ip:port for the MX lookup, may repeat; default: the nameservers of /etc/resolv.conf")
	replyLine := fs.String("reply", "", "a `reply` line to interpret, such as \"421 4.7.0 Try again later\"")
	stage := fs.String("stage", "rcpt", "the `stage` the reply answers: connect, helo, starttls, mail, rcpt or data")
	var sources stringList
	fs.Var(&sources, "source", "an egress `IP[=helo]` of the node, for the route (repeatable)")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if *msgFile == "" || *rcpt == "" {
		fmt.Fprintln(stderr, "corriere rules test: --message and --rcpt are required")
		fs.Usage()
		return 2
	}
	cleanup, err := builtInPolicyIfAbsent(fs, scripts, rules, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules test:", err)
		return 1
	}
	defer cleanup()
	for _, d := range nameservers {
		if _, err := netip.ParseAddrPort(d); err != nil {
			fmt.Fprintf(stderr, "corriere rules test: --dns %q: want ip:port such as 127.0.0.1:53: %v\n", d, err)
			return 2
		}
	}
	raw, err := os.ReadFile(*msgFile)
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules test:", err)
		return 1
	}
	var srcs []policy.Source
	for _, s := range sources {
		ip, helo, _ := strings.Cut(s, "=")
		srcs = append(srcs, policy.Source{IP: ip, Helo: helo})
	}
	e, err := loadPolicy(luart.Options{ScriptsDir: *scripts, RulesDir: *rules, Sources: srcs})
	if err != nil {
		fmt.Fprintln(stderr, policyError(err))
		return 1
	}
	res, err := dns.New(dns.Options{Servers: nameservers})
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules test:", err)
		return 1
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := e.DryRun(lctx, luart.DryRunInput{
		Name: *msgFile, Message: raw, Sender: *sender, Recipient: *rcpt, Tenant: *tenantName,
		MXHost: *mx, Resolver: res, Reply: *replyLine, Stage: policy.Stage(*stage),
	})
	if err != nil {
		fmt.Fprintln(stderr, policyError(err))
		return 1
	}
	if err := d.WriteText(stdout); err != nil {
		fmt.Fprintln(stderr, "corriere rules test:", err)
		return 1
	}
	return 0
}

func rulesPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules passwd", "rules passwd < password.txt", `
Read a password from the first line of standard input and print its bcrypt
hash, for the password_hash field of rules/tenants/<tenant>.lua. Tenant
files never hold plain-text passwords.`)
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		if err != nil && err != io.EOF {
			fmt.Fprintln(stderr, "corriere rules passwd:", err)
		} else {
			fmt.Fprintln(stderr, "corriere rules passwd: empty password on standard input")
		}
		return 1
	}
	hash, err := tenant.HashPassword(password)
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

// loadPolicy loads the policy as a node does: with the Lua modules of the
// registered plugins, and with the files of every plugin that keeps policy
// in the rules directory (rules/dkim.lua), so that a file the node would
// refuse is refused here too. The plugins are provisioned without a
// configuration section and closed before loadPolicy returns: the engine
// returned is for inspection, not for signing or delivering.
func loadPolicy(opts luart.Options) (*luart.Engine, error) {
	var ps []any
	defer func() {
		for _, p := range ps {
			if c, ok := p.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	for _, id := range plugin.IDs() {
		p, err := plugin.New(id)
		if err != nil {
			return nil, err
		}
		if pr, ok := p.(extension.Provisioner); ok {
			ctx := &extension.Context{RulesDir: opts.RulesDir, Logger: slog.New(slog.DiscardHandler)}
			if err := pr.Provision(ctx); err != nil {
				return nil, fmt.Errorf("plugin %s: %w", id, err)
			}
		}
		ps = append(ps, p)
		if m, ok := p.(luart.Module); ok {
			opts.Modules = append(opts.Modules, m)
		}
		if pr, ok := p.(extension.Preparer); ok {
			opts.Preparers = append(opts.Preparers, pr)
		}
	}
	return luart.New(opts)
}

// policyError is the "file:line: message" of a policy error.
func policyError(err error) string {
	var he *luart.HookError
	if errors.As(err, &he) {
		return he.Error()
	}
	var se *luart.ScriptError
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
