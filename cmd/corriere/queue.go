package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"corriere/core/admin"
	"corriere/core/message"
	"corriere/core/queue"
)

func init() {
	register(command{name: "queue", summary: "find, explain, bounce, delete, retry, rebind and suspend queued mail, on the running node or its spool", run: runQueue})
}

const queueUsage = `Usage: corriere queue summary|list|show|bounce|delete|retry|rebind|suspend|resume [flags]

  summary  list the ready queues of the running node: one line per
           (provider, source IP) with the recipients waiting per class,
           in flight, connections, limits (with the share of the hourly
           and daily volumes kept for critical mail), rate factor and
           suspensions
  list     list queued recipients by tenant, campaign, class, provider,
           domain, recipient, source IP, state or age
  show ID  one message: envelope, header, attempts, and why each
           recipient is where it is, hook by hook
  bounce   fail the selected recipients now, with a DSN (--reason)
  delete   remove the selected recipients, without a DSN
  retry    try the selected recipients now
  rebind   send the selected recipients from another pool (--pool)
  suspend  hold back a provider, a source IP, one lane, a tenant or a
           campaign --for a while
  resume   end such a suspension

Run 'corriere queue list --help' for the selectors.

The node is found through the admin.addr and admin.token files it writes to
its spool directory (--spool, default ./data). When no node runs, list,
show, the actions and suspend/resume work on the spool itself, and the node
follows what they recorded when it starts.
`

func runQueue(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(queueUsage)
		return 0
	}
	switch args[0] {
	case "list":
		return queueList(ctx, args[1:], os.Stdout, os.Stderr)
	case "show":
		return queueShow(ctx, args[1:], os.Stdout, os.Stderr)
	case "bounce", "delete", "retry", "rebind":
		return queueAct(ctx, args[0], args[1:], os.Stdout, os.Stderr)
	case "suspend", "resume":
		return queueSuspend(ctx, args[0], args[1:], os.Stdout, os.Stderr)
	case "summary":
	default:
		fmt.Fprintf(os.Stderr, "corriere queue: unknown subcommand %q\n\n%s", args[0], queueUsage)
		return 2
	}
	fs := newFlagSet("queue summary", "queue summary [--spool DIR] [--json]", queueUsage)
	spool := fs.String("spool", "./data", "spool `directory` of the running node")
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if status, ok := parseFlags(fs, args[1:]); !ok {
		return status
	}
	c, err := admin.Discover(*spool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "corriere queue summary:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if *asJSON {
		var raw map[string]any
		if err := c.Get(ctx, "/api/queue", &raw); err != nil {
			fmt.Fprintln(os.Stderr, "corriere queue summary:", err)
			return 1
		}
		writeIndentedJSON(os.Stdout, raw)
		return 0
	}
	var st queue.Status
	if err := c.Get(ctx, "/api/queue", &st); err != nil {
		fmt.Fprintln(os.Stderr, "corriere queue summary:", err)
		return 1
	}
	printQueueSummary(os.Stdout, st, time.Now())
	return 0
}

// printQueueSummary writes the status as a table.
func printQueueSummary(out io.Writer, st queue.Status, now time.Time) {
	fmt.Fprintf(out, "%d recipients pending, %d waiting for a retry; %d of %d outbound connections open\n\n",
		st.Pending, st.Scheduled, st.Connections, st.MaxConnections)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROVIDER\tSOURCE\tCRIT\tTRANS\tPERS\tNEWS\tFLIGHT\tCONNS\tLIMITS\tRATE\tSTATE")
	for _, l := range st.Lanes {
		src := l.Source
		if src == "" {
			src = "(system)"
		}
		state := "active"
		if !l.SuspendedUntil.IsZero() {
			state = "suspended " + l.SuspendedUntil.Sub(now).Round(time.Second).String()
		}
		if wu := l.Warmup; wu != nil {
			state += fmt.Sprintf(", warm-up day %d: %d/%d", wu.Day, wu.Sent, wu.Cap)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%.0f%%\t%s\n", l.Provider, src,
			l.Queued[message.Critical], l.Queued[message.Transactional], l.Queued[message.Personal], l.Queued[message.Newsletter],
			l.InFlight, l.Connections, limitsText(l), l.RateFactor*100, state)
	}
	w.Flush()
}

// limitsText formats a lane's limits for the LIMITS column: connections,
// rates, and the critical reserve of the hourly and daily volumes.
func limitsText(l queue.LaneStatus) string {
	var parts []string
	lim := l.Limits
	if lim.MaxConnections > 0 {
		parts = append(parts, fmt.Sprintf("%dconn", lim.MaxConnections))
	}
	for _, r := range []struct {
		v    float64
		unit string
	}{{lim.PerSecond, "/s"}, {lim.PerMinute, "/min"}, {lim.PerHour, "/h"}, {lim.PerDay, "/day"}} {
		if r.v > 0 {
			parts = append(parts, fmt.Sprintf("%g%s", r.v, r.unit))
		}
	}
	if lim.CriticalReserve > 0 && (lim.PerHour > 0 || lim.PerDay > 0) {
		// The share of the hourly and daily volumes kept for critical mail.
		parts = append(parts, fmt.Sprintf("%g%%critical", lim.CriticalReserve*100))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func writeIndentedJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // stdout
}
