package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"corriere/core/admin"
	"corriere/core/tlsrpt"
)

func init() {
	register(command{
		name:    "tlsrpt",
		summary: "print the TLS-RPT reports (RFC 8460) of a day, from the spool",
		run: func(ctx context.Context, args []string) int {
			return runTLSRPT(ctx, args, os.Stdout, os.Stderr)
		},
	})
}

const tlsrptDescription = `
Print the aggregate TLS reports (RFC 8460) the node would send for a day:
one JSON report per policy domain (a recipient domain with an MTA-STS
policy or DANE TLSA records), counting the sessions that succeeded and
those that failed, by failure type, sending IP and MX host. The running
node sends them itself shortly after midnight UTC to the addresses the
domain publishes at _smtp._tls (mailto: through its own queue, or https:),
then forgets the day. This command reads SPOOL/tls-rpt.json and sends
nothing, unless --send asks the running node (through its admin API) to
send the day's reports now.
`

func runTLSRPT(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tlsrpt", "tlsrpt [flags]", tlsrptDescription)
	fs.SetOutput(stderr)
	spoolDir := fs.String("spool", "./data", "spool `directory` of the node")
	dayFlag := fs.String("day", "", "the UTC `date` to report, YYYY-MM-DD; default: today")
	domain := fs.String("domain", "", "only this policy `domain`; default: every domain with sessions that day")
	hostname := fs.String("hostname", "", "the node's host `name`, in the report ID; default: the system host name")
	send := fs.Bool("send", false, "have the running node send the day's reports now, instead of printing them")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	day := time.Now().UTC()
	if *dayFlag != "" {
		d, err := time.Parse(time.DateOnly, *dayFlag)
		if err != nil {
			fmt.Fprintf(stderr, "corriere tlsrpt: --day %q: want YYYY-MM-DD\n", *dayFlag)
			return 2
		}
		day = d
	}
	if *send {
		return sendTLSRPT(ctx, *spoolDir, day, stdout, stderr)
	}
	if *hostname == "" {
		*hostname, _ = os.Hostname()
	}
	rec, err := tlsrpt.NewRecorder(tlsrpt.Options{Path: filepath.Join(*spoolDir, "tls-rpt.json"), Submitter: *hostname})
	if err != nil {
		fmt.Fprintln(stderr, "corriere tlsrpt:", err)
		return 1
	}
	domains := rec.Domains(day)
	if *domain != "" {
		domains = []string{*domain}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	printed := 0
	for _, d := range domains {
		if rep := rec.Report(day, d); rep != nil {
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintln(stderr, "corriere tlsrpt:", err)
				return 1
			}
			printed++
		}
	}
	if printed == 0 {
		fmt.Fprintf(stderr, "corriere tlsrpt: no TLS sessions under a policy recorded for %s\n", day.Format(time.DateOnly))
		return 1
	}
	return 0
}

// sendTLSRPT asks the node running on spoolDir to send day's reports.
func sendTLSRPT(ctx context.Context, spoolDir string, day time.Time, stdout, stderr io.Writer) int {
	c, err := admin.Discover(spoolDir)
	if err != nil {
		fmt.Fprintln(stderr, "corriere tlsrpt --send:", err)
		return 1
	}
	var res tlsrpt.SendResult
	err = c.Post(ctx, "/api/tlsrpt/send?day="+day.Format(time.DateOnly), &res)
	fmt.Fprintf(stdout, "%s: %d reports sent\n", day.Format(time.DateOnly), res.Sent)
	if err != nil {
		if res.Error != "" {
			err = errors.New(res.Error)
		}
		fmt.Fprintln(stderr, "corriere tlsrpt --send:", err)
		return 1
	}
	return 0
}
