package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"corriere/core/demo"
)

func init() {
	register(command{
		name:    "demo",
		summary: "run Corriere against a simulated mail internet with a mixed workload, and account for every message",
		run:     runDemo,
	})
}

const demoDescription = `
Demo shows the whole system at work, on this machine only: it starts the
simulated mail internet of "corriere sim" (a DNS server and MX servers that
behave like Gmail, Microsoft, Yahoo, Libero, TIM, a small office's Postfix,
a nolisting domain and a tarpit, all on 127.0.0.0/8), starts Corriere
in-process (the same node "corriere serve" runs, with the default scripts/
and rules/ copied into a workspace) pointed at the simulated DNS and bound
to the source addresses 127.0.0.2-127.0.0.8, and submits a mixed workload
over SMTP with AUTH, as two tenants' applications would:

  - negozio, an online shop on negozio-esempio.it: a newsletter campaign to
    a few thousand customers (submitted in batches of 100), order
    confirmations and shipping notices (transactional), and verification
    codes (critical, by the tenant's classify rules);
  - ricette, a platform through which doctors write from their own
    practices' domains: personal mail to patients and electronic
    prescriptions (critical). Their bounces go to each doctor.

The lists contain what real lists contain: unknown users, full mailboxes,
typo domains that do not exist, a null-MX domain, addresses at providers
that greylist, a nolisting domain, a tarpit, and more mail than some
providers take per minute. One source, 127.0.0.8, is on day 1 of a warm-up
schedule. Time is compressed so that it all fits in under a minute: retries
after 2s, 5s and 10s; the delays the policy asks for (5m after greylisting,
an hour's suspension) divided by 300, at most 10s; recipients expire after
25s instead of days; the simulated providers' clocks run fifteen times as
fast.
The demo ends when every message is settled, or after --duration.

How to read it. While it runs, a table per provider and class counts
recipients delivered, deferred attempts, recipients bounced and recipients
still queued ("(not tried yet)" are acknowledged but not yet routed; "dsn"
rows are the delivery status notifications Corriere sends to senders).
Above it, one line per event that changes how Corriere sends: a lane
(provider and source IP) suspended after a provider objected ("too many
connections", rate limits) and resumed, and a warming IP reaching its cap
for the day. When the output is not a terminal, a progress line is printed
every few seconds instead.

At the end: the final table; what each simulated provider saw (connections,
greylisting, rate limiting, refusals, later bounces and complaints); the
mail that reached the senders' own MX (Corriere's DSNs, and the providers'
late bounces and complaint reports, filed by the policy's on_bounce); and
the accounting. Every recipient acknowledged with 250 must be delivered
(and recorded by the simulated provider), bounced or expired with a DSN to
its sender, or still in the spool with its last reply as the reason. The
exit status is 1 if any is unaccounted for, and the list is printed.

The event log (JSON lines, one event per state change) and Corriere's log
are kept; with --keep DIR the whole workspace (spool, policy copy) is kept
too, and "corriere serve --spool DIR/spool --scripts DIR/scripts --rules
DIR/rules" would pick up whatever was still queued.

Examples:
  corriere demo
  corriere demo --messages 500 --duration 30s
  corriere demo --keep ./demo-run --seed 7
  corriere demo --admin 127.0.0.1:8025 --duration 5m   # watch http://127.0.0.1:8025/
`

func runDemo(ctx context.Context, args []string) int {
	fs := newFlagSet("demo", "demo [flags]", demoDescription)
	opts := demo.Options{}
	fs.IntVar(&opts.Messages, "messages", 2500, "workload size, counted as mailboxes receive it: about this many recipients, in fewer messages since a newsletter has many recipients (at least 20)")
	fs.DurationVar(&opts.Duration, "duration", 55*time.Second, "stop after this long and report what is still queued")
	fs.StringVar(&opts.WorldPath, "world", "", "simulated world `file` (see corriere sim); default: the world built into the binary")
	fs.StringVar(&opts.KeepDir, "keep", "", "keep the whole workspace in this new or empty `directory` (default: a temporary one, of which only the logs are kept)")
	fs.Int64Var(&opts.Seed, "seed", 1, "seed of the workload and of the simulated complaints")
	fs.StringVar(&opts.ScriptsDir, "scripts", "", "Lua policy scripts `directory` to copy; default: the policy built into the binary")
	fs.StringVar(&opts.RulesDir, "rules", "", "policy data `directory` to copy; default: the policy built into the binary")
	fs.StringVar(&opts.Admin, "admin", "", "admin listener `address` serving the API and the status page while the demo runs (open to loopback), such as 127.0.0.1:8025; default: none")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "corriere demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	opts.Out = os.Stdout
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		opts.Live = true
	}
	r, err := demo.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "corriere demo:", err)
		return 1
	}
	if !r.OK() {
		return 1
	}
	return 0
}
