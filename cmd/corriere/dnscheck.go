package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"corriere/core/dns"
	"corriere/core/dnscheck"
	"corriere/core/spf"
	"corriere/plugins/dkim"
)

func init() {
	register(command{
		name:    "dns",
		summary: "check the SPF, DKIM, DMARC, PTR and MX records senders' domains need",
		run: func(ctx context.Context, args []string) int {
			return runDNS(ctx, args, os.Stdout, os.Stderr)
		},
	})
}

const dnsUsage = `Usage: corriere dns check DOMAIN... [--tenant T] [--dns ADDR] [--json]

  check   look up, from the outside, the records each domain needs for mail
          from this platform to be delivered, and print what to publish

Run 'corriere dns check --help' for its flags.
`

func runDNS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, dnsUsage)
		return 0
	}
	if args[0] != "check" {
		fmt.Fprintf(stderr, "corriere dns: unknown subcommand %q\n\n%s", args[0], dnsUsage)
		return 2
	}
	return dnsCheck(ctx, args[1:], stdout, stderr)
}

const dnsCheckDescription = `
Check each DOMAIN with the platform's own settings: the source IPs of
rules/pools.lua (or --source-ip), their HELO names, the tenants'
bounce and return-path domains, and the DKIM keys of rules/dkim.lua.

  SPF      the domain's record evaluated (RFC 7208) for every source IP: which
           mechanism matched, the 10-lookup and 2-void-lookup limits, syntax
  DKIM     each key's record exists and holds this key; selectors published
           but not configured, and configured but not published
  DMARC    the record (policy, pct, rua/ruf, alignment) and whether the
           platform's mail passes it through SPF or DKIM, re-enveloped
           tenants included
  PTR      forward-confirmed reverse DNS of every source IP and its HELO name
  MX       the bounce and return-path domains' MX reaches --bounce-listen,
           and their SPF passes
  MTA-STS and TLS-RPT records, when published

Each finding is ok, warning or error, with what it means for delivery and the
exact record to publish. The tenant is --tenant, or the one whose
sender_domains hold the domain; with --tenant and no DOMAIN, the tenant's
sender_domains and bounce domain are checked. Exits 1 when there is an
error.

Example:

  corriere dns check example.org --config /etc/corriere/corriere.conf`

func dnsCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("dns check", "dns check DOMAIN... [--tenant T] [--dns ADDR] [--json]", dnsCheckDescription)
	tenant := flags.String("tenant", "", "check with the settings of `tenant` (rules/tenants/T.lua)")
	var servers stringList
	flags.Var(&servers, "dns", "nameserver `address` host:port to ask; default: the first of /etc/resolv.conf")
	asJSON := flags.Bool("json", false, "print the report as JSON, for tools")
	rules := flags.String("rules", "./rules", "policy data `directory` (pools.lua, dkim.lua, tenants/)")
	var sources stringList
	flags.Var(&sources, "source-ip", "egress `IP`, optionally IP=helo.name, may repeat; used when rules/pools.lua names no IP")
	hostname := flags.String("hostname", "", "the node's `name`: HELO of sources without one, and the MX suggested for bounce domains; default: the system host name")
	bounceListen := flags.String("bounce-listen", "", "bounce listener `address` that bounce domains' MX must reach")
	timeout := flags.Duration("timeout", 5*time.Second, "bound on each DNS query")
	flags.SetOutput(stderr)
	// Domains may come before the flags: parse the flags after them too.
	var domains []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		domains, args = append(domains, args[0]), args[1:]
	}
	if status, ok := parseFlags(flags, args); !ok {
		return status
	}
	domains = append(domains, flags.Args()...)
	if len(domains) == 0 && *tenant == "" {
		fmt.Fprintln(stderr, "corriere dns check: name at least one domain, or a --tenant whose sender_domains to check")
		return 2
	}
	if *hostname == "" {
		*hostname, _ = os.Hostname()
	}
	platform := &dnscheck.Platform{BounceListener: *bounceListen}
	for _, s := range sources {
		ipText, helo, _ := strings.Cut(s, "=")
		ip, err := netip.ParseAddr(ipText)
		if err != nil {
			fmt.Fprintf(stderr, "corriere dns check: --source-ip %q: %v\n", s, err)
			return 2
		}
		if helo == "" {
			helo = *hostname
		}
		platform.Sources = append(platform.Sources, dnscheck.Source{IP: ip, HELO: helo})
	}
	if err := platform.LoadRules(*rules); err != nil {
		fmt.Fprintln(stderr, "corriere dns check:", err)
		return 1
	}
	r, err := dkim.Load(*rules, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		fmt.Fprintln(stderr, "corriere dns check:", err)
		return 1
	default:
		platform.Keys = dkim.DNSCheckKeys(r)
	}
	if t, ok := platform.Tenants[*tenant]; ok && len(domains) == 0 {
		domains = t.SenderDomains
	}
	server := ""
	if len(servers) > 0 {
		server = servers[0]
	} else {
		opts := dns.Options{}
		opts.EnsureDefaults()
		server = opts.Servers[0]
	}
	checker := &dnscheck.Checker{
		Resolver: &spf.DNS{Server: server, Timeout: *timeout},
		Platform: platform, Hostname: *hostname,
	}
	report, err := checker.Check(ctx, domains, *tenant)
	if err != nil {
		fmt.Fprintln(stderr, "corriere dns check:", err)
		return 2
	}
	if *asJSON {
		err = report.WriteJSON(stdout)
	} else {
		err = report.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "corriere dns check:", err)
		return 1
	}
	if report.Count(dnscheck.Error) > 0 {
		return 1
	}
	return 0
}
