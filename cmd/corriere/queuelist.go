package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"corriere/core/admin"
	"corriere/core/inspect"
	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/queue"
	"corriere/core/spool"
)

// queueSource is where queue list and show read: the running node's admin
// API, or the spool and policy opened directly when no node runs.
type queueSource struct {
	spool, scripts, rules string
}

func (s *queueSource) register(fs *flag.FlagSet) {
	s.registerSpool(fs)
	fs.StringVar(&s.scripts, "scripts", "./scripts", "hook scripts `directory`, used when no node runs (for providers and the trace)")
	fs.StringVar(&s.rules, "rules", "./rules", "policy data `directory`, used when no node runs")
}

// registerSpool registers --spool alone, for the commands that need the
// running node.
func (s *queueSource) registerSpool(fs *flag.FlagSet) {
	fs.StringVar(&s.spool, "spool", "./data", "spool `directory` of the node")
}

// node returns a client of the running node's admin API, for what only
// the running queue can do (actions, suspensions).
func (s *queueSource) node() (*admin.Client, error) {
	c, err := admin.Discover(s.spool)
	if err == nil {
		err = probe(c.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("this needs the running node: %w", err)
	}
	return c, nil
}

// open returns a client of the running node, or an inspector over the
// spool opened directly, with the policy when it loads.
func (s *queueSource) open() (*admin.Client, *inspect.Inspector, inspect.Policy, func(), error) {
	if c, err := s.node(); err == nil {
		return c, nil, nil, func() {}, nil
	}
	dir := filepath.Join(s.spool, "queue")
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("no spool in %s (is --spool the directory corriere serve uses?): %w", dir, err)
	}
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		if isLocked(err) {
			return nil, nil, nil, nil, fmt.Errorf("the spool %s is in use by a running node whose admin API does not answer (start it with --admin): %w", dir, err)
		}
		return nil, nil, nil, nil, err
	}
	in := &inspect.Inspector{Spool: sp}
	var pol inspect.Policy
	if e, err := luart.New(luart.Options{ScriptsDir: s.scripts, RulesDir: s.rules}); err == nil {
		in.Providers, pol = e, e
	}
	return nil, in, pol, func() { sp.Close() }, nil
}

const queueListHelp = `
Lists queued recipients, one line each: queue id, recipient, tenant, class,
provider of the last attempt, state, attempts, next attempt and last reply.
The selectors combine; a tenant's recipients are found through an index, so
"--tenant X --limit 100" answers at once on a large queue.

States: ready (due now), deferred (waiting for a retry after a failed
attempt), scheduled (due later, not tried yet); on a running node also
inflight (in a transaction now) and suspended (its provider or lane is
paused).

It asks the running node through its admin API (found through --spool), or
reads the spool directly when no node runs.

Examples:
  corriere queue list --domain libero.it --state deferred
  corriere queue list --tenant acme --campaign spring --limit 100 --json
  corriere queue list --older-than 24h`

func queueList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("queue list", "queue list [selectors] [--limit N] [--json]", queueListHelp)
	fs.SetOutput(stderr)
	var src queueSource
	src.register(fs)
	f, class := selectorFlags(fs)
	fs.IntVar(&f.Limit, "limit", 1000, "stop after this many `recipients` (0: all)")
	asJSON := fs.Bool("json", false, "print JSON: {\"recipients\": [...]}")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	f.Class = message.Class(*class)
	if err := f.Validate(); err != nil {
		fmt.Fprintln(stderr, "corriere queue list:", err)
		return 2
	}
	client, in, _, closeSrc, err := src.open()
	if err != nil {
		fmt.Fprintln(stderr, "corriere queue list:", err)
		return 1
	}
	defer closeSrc()
	var list inspect.ListResponse
	if client != nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = client.Get(ctx, "/api/recipients?"+f.Query().Encode(), &list)
	} else {
		list.Recipients, err = in.List(*f)
	}
	if err != nil {
		fmt.Fprintln(stderr, "corriere queue list:", err)
		return 1
	}
	if *asJSON {
		writeIndentedJSON(stdout, list)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tRECIPIENT\tTENANT\tCLASS\tPROVIDER\tSTATE\tATTEMPTS\tNEXT\tLAST REPLY")
	now := time.Now()
	for _, r := range list.Recipients {
		fmt.Fprintf(w, "%s/%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Index, r.Address, dash(r.Tenant), r.Class,
			dash(r.Provider), r.State, r.Attempts, untilText(r.NextAttempt, now), dash(clip(r.LastReply, 70)))
	}
	w.Flush()
	if f.Limit > 0 && len(list.Recipients) == f.Limit {
		fmt.Fprintf(stderr, "(stopped at --limit %d)\n", f.Limit)
	}
	return 0
}

const queueShowHelp = `
Shows one queued message: its envelope and header, and for each recipient
still queued its state, attempts and last reply, and why it is where it is:
the decisions of the policy in force (classify, route, shape, warm-up, and
on_response's verdict on the last reply), each with the file and line that
defines the hook.

Example:
  corriere queue show 1hre0p8f81f1ovsnm001`

func queueShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("queue show", "queue show ID [--json]", queueShowHelp)
	fs.SetOutput(stderr)
	var src queueSource
	src.register(fs)
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "corriere queue show: give one queue id (from the 250 reply, the Received field or queue list)")
		return 2
	}
	id, _, _ := strings.Cut(fs.Arg(0), "/")
	client, in, pol, closeSrc, err := src.open()
	if err != nil {
		fmt.Fprintln(stderr, "corriere queue show:", err)
		return 1
	}
	defer closeSrc()
	var x *inspect.Explanation
	if client != nil {
		x = &inspect.Explanation{}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err = client.Get(ctx, "/api/messages/"+id, x)
	} else {
		x, err = in.Explain(ctx, id, pol)
	}
	if err != nil {
		fmt.Fprintln(stderr, "corriere queue show:", err)
		return 1
	}
	if *asJSON {
		writeIndentedJSON(stdout, x)
		return 0
	}
	printExplanation(stdout, x, time.Now())
	return 0
}

// printExplanation writes an explanation for a reader.
func printExplanation(out io.Writer, x *inspect.Explanation, now time.Time) {
	fmt.Fprintf(out, "Message %s\n", x.ID)
	fmt.Fprintf(out, "  from      <%s>, tenant %s, class %s", x.Sender, dash(x.Tenant), x.Class)
	if x.Campaign != "" {
		fmt.Fprintf(out, ", campaign %s", x.Campaign)
	}
	fmt.Fprintf(out, "\n  received  %s from %s (%d bytes)\n", x.Received.Format(time.RFC3339), dash(x.ClientIP), x.Size)
	if x.Author != "" {
		fmt.Fprintf(out, "  bounces   to %s (re-enveloped)\n", x.Author)
	}
	fmt.Fprintf(out, "\nHeader:\n%s\n", indent(x.Header, "  "))
	for _, r := range x.Recipients {
		fmt.Fprintf(out, "Recipient %d: %s\n", r.Index, r.Address)
		fmt.Fprintf(out, "  state     %s, %d attempts, next %s\n", r.State, r.Attempts, untilText(r.NextAttempt, now))
		if r.LastReply != "" {
			fmt.Fprintf(out, "  last      %s (MX %s, from %s)\n", r.LastReply, dash(r.LastMX), dash(r.LastSource))
		}
		if len(r.Trace) > 0 {
			fmt.Fprintf(out, "  why (policy generation %d):\n", x.Generation)
			for _, s := range r.Trace {
				fmt.Fprintf(out, "    %-12s %s\n", s.Hook, s.Decided)
				if s.Where != "" {
					fmt.Fprintf(out, "    %-12s   at %s\n", "", s.Where)
				}
			}
		}
		fmt.Fprintln(out)
	}
}

func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\r\n", "\n"), "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// untilText says when t comes relative to now: "now" or "in 4m0s".
func untilText(t, now time.Time) string {
	if !t.After(now) {
		return "now"
	}
	return "in " + t.Sub(now).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// selectorFlags registers the selectors of queue list and the actions.
func selectorFlags(fs *flag.FlagSet) (f *inspect.Filter, class *string) {
	f, class = &inspect.Filter{}, new(string)
	fs.StringVar(&f.Tenant, "tenant", "", "only this `tenant`'s messages")
	fs.StringVar(&f.Campaign, "campaign", "", "only this `campaign`")
	fs.StringVar(class, "class", "", "only this `class`: critical, transactional, personal or newsletter")
	fs.StringVar(&f.Provider, "provider", "", "only recipients whose last attempt went to this `provider`")
	fs.StringVar(&f.Domain, "domain", "", "only recipients at this `domain`")
	fs.StringVar(&f.Rcpt, "rcpt", "", "only this recipient `address`")
	fs.StringVar(&f.Source, "source", "", "only recipients whose last attempt left from this source `IP`")
	fs.StringVar(&f.State, "state", "", "only recipients in this `state`: ready, deferred, scheduled, or on a running node inflight and suspended")
	fs.DurationVar(&f.OlderThan, "older-than", 0, "only messages received at least this `long` ago")
	return f, class
}

const queueActHelp = `
Acts on the queued recipients the selectors pick (the same as queue list's;
at least one is required):

  bounce  fail them now: they leave delivery at once, and each sender
          gets a DSN with --reason and a bounced event is recorded, written
          in the background (paced while other mail flows; the metric
          corriere_operator_removals_waiting counts what is left)
  delete  remove them without a DSN, with a deleted event (in the
          background too, like a bounce)
  retry   try them now instead of at their next retry time
  rebind  send them from --pool (of rules/pools.lua) from now on: the route
          hook is given the pool at each of their routings until they
          settle (recorded in the spool: it outlives a restart)

Recipients on their way to delivery at that moment (ready in a lane or in a
transaction) get a bounce or delete when that attempt ends, unless it
delivers them; a retry leaves them alone.

Actions go through the running node's admin API (found through --spool).
When no node runs they are taken on the spool directly: a bounce's DSNs,
a retry and a rebind wait for the node's next start, and the events are
appended to its event log. Give the node's --config so that the DSNs
carry its --hostname and --max-age.

Examples:
  corriere queue bounce --domain typo-domain.test --reason "the domain does not exist"
  corriere queue delete --tenant acme --campaign spring-test
  corriere queue retry --provider libero --state deferred
  corriere queue rebind --provider microsoft --pool warm --reason "the bulk IPs are listed"`

func queueAct(ctx context.Context, action string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("queue "+action, "queue "+action+" [selectors] [--reason TEXT]", queueActHelp)
	fs.SetOutput(stderr)
	var src queueSource
	var off offlineSettings
	src.registerSpool(fs)
	off.register(fs)
	f, class := selectorFlags(fs)
	reason := fs.String("reason", "", "why, in a `sentence`: sent to the sender in a bounce's DSN, recorded in the events")
	pool := ""
	if action == "rebind" {
		fs.StringVar(&pool, "pool", "", "the `pool` of rules/pools.lua to send from (required)")
	}
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	f.Class = message.Class(*class)
	if err := f.Validate(); err != nil {
		fmt.Fprintf(stderr, "corriere queue %s: %v\n", action, err)
		return 2
	}
	if f.Empty() {
		fmt.Fprintf(stderr, "corriere queue %s: %v\n", action, inspect.ErrNoSelector)
		return 2
	}
	if action == "rebind" && pool == "" {
		fmt.Fprintln(stderr, "corriere queue rebind: --pool is required")
		return 2
	}
	var res inspect.ActResponse
	offline, err := onNodeOrSpool(&src, off, stderr, func(client *admin.Client) error {
		q := f.Query()
		if *reason != "" {
			q.Set("reason", *reason)
		}
		if pool != "" {
			q.Set("pool", pool)
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return client.Post(ctx, "/api/recipients/"+action+"?"+q.Encode(), &res)
	}, func(oq *offlineQueue) error {
		if pools := oq.policy.Status().Pools; pool != "" && !slices.Contains(pools, pool) {
			return fmt.Errorf("pool %q is not in rules/pools.lua (pools: %v)", pool, pools)
		}
		var err error
		res, err = oq.in.Act(oq.Queue, action, *f, *reason, pool)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "corriere queue %s: %v\n", action, err)
		return 1
	}
	if *asJSON {
		writeIndentedJSON(stdout, res)
		return 0
	}
	if offline {
		fmt.Fprintf(stdout, "%s: %d selected, %d done on the stopped node's spool%s\n", action, res.Selected, res.Done, offlineNote[action])
		return 0
	}
	if action == inspect.ActionBounce {
		fmt.Fprintf(stdout, "bounce: %d selected, %d bounced now (their DSNs are written in the background), %d when their current attempt ends\n",
			res.Selected, res.Done, res.Pending)
		return 0
	}
	fmt.Fprintf(stdout, "%s: %d selected, %d done now, %d when their current attempt ends\n",
		action, res.Selected, res.Done, res.Pending)
	return 0
}

// offlineNote says, per action, what happens next to what an action did
// on a stopped node's spool.
var offlineNote = map[string]string{
	inspect.ActionBounce: "; their DSNs go out when the node starts",
	inspect.ActionDelete: "; they are removed when the node starts",
	inspect.ActionRetry:  "; they are due when the node starts",
	inspect.ActionRebind: "; the node routes them with the pool when it starts",
}

const queueSuspendHelp = `
Suspends, or resumes, on the running node, the deliveries of a provider
(--provider), of a source IP to every provider (--source), of one
(provider, source) lane (both); or a tenant's mail (--tenant), or one
campaign of it (--tenant and --campaign). A suspension lasts --for and is
recorded as a suspended event with --reason; resume ends it at once,
whoever set it (an operator, or the policy after a provider's reply). Mail
waits in the queue meanwhile; nothing is bounced. A suspension is recorded
in the spool, so it outlives a restart, and a suspension of a source IP
covers the lanes opened after it too. When no node runs, the suspension
is recorded in its spool and followed when it starts.

Examples:
  corriere queue suspend --provider libero --for 2h --reason "Libero asked us to slow down"
  corriere queue suspend --source 192.0.2.10 --for 30m --reason "IP listed on Spamhaus"
  corriere queue suspend --tenant acme --campaign black-friday --for 1h --reason "wrong link"
  corriere queue resume --provider libero`

func queueSuspend(ctx context.Context, action string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("queue "+action, "queue "+action+" --provider P | --source IP | --tenant T [--campaign C] [--for DUR --reason TEXT]", queueSuspendHelp)
	fs.SetOutput(stderr)
	var src queueSource
	var off offlineSettings
	src.registerSpool(fs)
	off.register(fs)
	provider := fs.String("provider", "", "the `provider`, as rules/providers.lua names it")
	source := fs.String("source", "", "the source `IP`")
	tenant := fs.String("tenant", "", "the `tenant` whose mail to hold")
	campaign := fs.String("campaign", "", "the `campaign` of --tenant to hold")
	dur := fs.Duration("for", 0, "how `long` the suspension lasts (suspend only)")
	reason := fs.String("reason", "", "why, in a `sentence`, for the event and the log (suspend only)")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if *provider == "" && *source == "" && *tenant == "" {
		fmt.Fprintf(stderr, "corriere queue %s: name a --provider, a --source IP, or a --tenant\n", action)
		return 2
	}
	if action == "suspend" && *dur <= 0 {
		fmt.Fprintln(stderr, "corriere queue suspend: --for is required, such as --for 2h")
		return 2
	}
	scope := queue.Scope{Provider: *provider, Source: *source, Tenant: *tenant, Campaign: *campaign}
	var res inspect.SuspendResponse
	offline, err := onNodeOrSpool(&src, off, stderr, func(client *admin.Client) error {
		q := url.Values{}
		for k, v := range map[string]string{"provider": *provider, "source": *source, "tenant": *tenant, "campaign": *campaign, "reason": *reason} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if action == "suspend" {
			q.Set("for", dur.String())
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return client.Post(ctx, "/api/"+action+"?"+q.Encode(), &res)
	}, func(oq *offlineQueue) error {
		var err error
		res.Scope = scope
		if action == "suspend" {
			res.Until = time.Now().Add(*dur)
			res.Count, err = oq.Suspend(scope, res.Until, *reason)
		} else {
			res.Count, err = oq.Resume(scope)
		}
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "corriere queue %s: %v\n", action, err)
		return 1
	}
	what := fmt.Sprintf("provider %s, source %s", dash(res.Provider), dash(res.Source))
	if res.Tenant != "" {
		what = fmt.Sprintf("tenant %s, campaign %s", res.Tenant, dash(res.Campaign))
	}
	note := ""
	if offline {
		note = "; recorded in the stopped node's spool, which it follows when it starts"
	}
	if action == "suspend" {
		fmt.Fprintf(stdout, "suspended %d (%s) until %s%s\n", res.Count, what, res.Until.Format(time.RFC3339), note)
	} else {
		fmt.Fprintf(stdout, "resumed %d (%s)%s\n", res.Count, what, note)
	}
	return 0
}
