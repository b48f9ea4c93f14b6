package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"corriere/core/admin"
	"corriere/core/reputation"
)

func init() {
	register(command{name: "reputation", summary: "delivery reputation per source IP, tenant and class at each provider", run: runReputation})
}

const reputationHelp = `Shows the running node's reputation: what each source IP, tenant and class
sent to each provider over the last hour, day and week, and how it fared
(delivered, deferred, bounced by category, complained, opened, clicked), then
the lanes with their suspensions, reasons and warm-up, and every suspension in
force. The counts are kept in the spool, so they survive a restart.

Rows whose provider is "*" count every provider together. --ip and --tenant
each select rows of their own kind; --provider selects rows at one provider.
Rates of deliveries, deferrals and bounces are shares of the attempts; rates
of complaints, opens and clicks are shares of the delivered recipients.

The node is found through the admin.addr and admin.token files it writes to
its spool directory (--spool, default ./data).`

func runReputation(ctx context.Context, args []string) int {
	return reputationCmd(ctx, args, os.Stdout, os.Stderr)
}

func reputationCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reputation", "reputation [--ip IP] [--provider P] [--tenant T] [--json]", reputationHelp)
	fs.SetOutput(stderr)
	spool := fs.String("spool", "./data", "spool `directory` of the running node")
	ip := fs.String("ip", "", "only this source `IP`")
	provider := fs.String("provider", "", "only this `provider`")
	tenant := fs.String("tenant", "", "only this `tenant`")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	c, err := admin.Discover(*spool)
	if err != nil {
		fmt.Fprintln(stderr, "corriere reputation:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q := url.Values{}
	for k, v := range map[string]string{"ip": *ip, "provider": *provider, "tenant": *tenant} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var rep reputation.Report
	if err := c.Get(ctx, "/api/reputation?"+q.Encode(), &rep); err != nil {
		fmt.Fprintln(stderr, "corriere reputation:", err)
		return 1
	}
	if *asJSON {
		writeIndentedJSON(stdout, rep)
		return 0
	}
	printReputation(stdout, rep)
	return 0
}

// printReputation writes a report as tables: the rows, the lanes, the
// suspensions.
func printReputation(out io.Writer, rep reputation.Report) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tPROVIDER\tSENT 1h\tSENT 24h\tSENT 7d\tDELIV\tDEFER\tBOUNCE\tCOMPL\tOPEN\tCLICK\t(24h)")
	for _, r := range rep.Rows {
		name, prov := r.Name, r.Provider
		if name == "" {
			name = "(system)"
		}
		if prov == "" {
			prov = "*"
		}
		d := r.Day
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Dimension, name, prov,
			r.Hour.Sent, d.Sent, r.Week.Sent, pct(d.Rates.Delivery), pct(d.Rates.Deferral), pct(d.Rates.Bounce),
			pct(d.Rates.Complaint), pct(d.Rates.Open), pct(d.Rates.Click))
	}
	w.Flush()
	if len(rep.Lanes) > 0 {
		fmt.Fprintln(out)
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PROVIDER\tSOURCE\tQUEUED\tFLIGHT\tRATE\tWARM-UP\tSUSPENDED")
		for _, l := range rep.Lanes {
			src := l.Source
			if src == "" {
				src = "(system)"
			}
			warm := "-"
			if l.Warmup != nil {
				warm = fmt.Sprintf("day %d: %d/%d", l.Warmup.Day, l.Warmup.Sent, l.Warmup.Cap)
			}
			susp := "-"
			if !l.SuspendedUntil.IsZero() {
				susp = fmt.Sprintf("for %s: %s", l.SuspendedUntil.Sub(rep.Generated).Round(time.Second), l.SuspendReason)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f%%\t%s\t%s\n", l.Provider, src, l.Queued, l.InFlight, l.RateFactor*100, warm, susp)
		}
		w.Flush()
	}
	if len(rep.Suspensions) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(out, "Suspensions in force:")
		for _, s := range rep.Suspensions {
			fmt.Fprintf(out, "  %s until %s: %s\n", scopeText(s.Scope), s.Until.UTC().Format(time.RFC3339), s.Reason)
		}
	}
}

// scopeText names what a suspension holds back.
func scopeText(s reputation.Scope) string {
	switch {
	case s.Tenant != "" && s.Campaign != "":
		return "tenant " + s.Tenant + " campaign " + s.Campaign
	case s.Tenant != "":
		return "tenant " + s.Tenant
	case s.Source != "":
		return s.Provider + " from " + s.Source
	}
	return s.Provider
}

// pct formats a fraction as a percentage with one decimal.
func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }
