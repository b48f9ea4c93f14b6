package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"corriere/core/admin"
	"corriere/core/event"
	"corriere/core/spool"
	"corriere/core/suppress"
)

func init() {
	register(command{
		name:    "suppression",
		summary: "list, add, remove, import and export the per-tenant suppression list",
		run: func(ctx context.Context, args []string) int {
			return runSuppression(ctx, args, os.Stdin, os.Stdout, os.Stderr)
		},
	})
}

const suppressionUsage = `Usage: corriere suppression <list|add|remove|import|export> [flags]

Each tenant has its own suppression list: addresses that hard-bounced (the
mailbox or the domain does not exist) or whose owner complained. Mail from
that tenant to them is refused at RCPT with 550 5.1.1, or, for tenants with
suppression = "drop" in rules/tenants/, accepted and not delivered. The
same address stays deliverable for the other tenants. Mail relayed without
AUTH has its own list, the tenant '' (--tenant '').

  list     show the suppressed addresses (a table, or CSV with --csv)
  add      suppress addresses for a tenant by hand
  remove   take addresses off a tenant's list (mail to them flows again)
  import   add the rows of a CSV file (tenant,address,category,reason,
           source,added); a file with a bad row changes nothing
  export   write the list as CSV, to import elsewhere or keep

When the node runs, the commands go through its admin API (found through
admin.addr and admin.token in --spool, or --admin); when it does not, they
open the spool directly.

Run 'corriere suppression <subcommand> --help' for its flags.
`

func runSuppression(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, suppressionUsage)
		return 0
	}
	switch args[0] {
	case "list":
		return suppressionList(args[1:], stdout, stderr)
	case "add":
		return suppressionAdd(args[1:], stdout, stderr)
	case "remove":
		return suppressionRemove(args[1:], stdout, stderr)
	case "import":
		return suppressionImport(args[1:], stdin, stdout, stderr)
	case "export":
		return suppressionExport(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "corriere suppression: unknown subcommand %q\n\n%s", args[0], suppressionUsage)
		return 2
	}
}

// suppressionStore is a suppression list, local (*suppress.List) or on the
// running node (*suppress.Client).
type suppressionStore interface {
	Add(e suppress.Entry) (suppress.Entry, error)
	Remove(tenant, addr string) (suppress.Entry, error)
	Scan(tenant string, fn func(suppress.Entry) error) error
	ImportCSV(r io.Reader) (int, error)
	ExportCSV(w io.Writer, tenant string) error
}

// storeFlags are the flags every subcommand has.
type storeFlags struct {
	spool     string
	adminAddr string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.spool, "spool", "./data", "spool `directory` of the node")
	fs.StringVar(&f.adminAddr, "admin", "", "admin API `address` of the running node (default: from SPOOL/admin.addr)")
}

// open returns the running node's list when its admin API answers, or the
// spool's list opened directly. create allows making a new spool (add and
// import may prepare a node that has never run).
func (f *storeFlags) open(create bool) (suppressionStore, func(), error) {
	if f.adminAddr != "" {
		token, err := os.ReadFile(filepath.Join(f.spool, "admin.token"))
		if err != nil {
			return nil, nil, fmt.Errorf("--admin %s needs the token in %s/admin.token: %w", f.adminAddr, f.spool, err)
		}
		c := &suppress.Client{Addr: f.adminAddr, Token: strings.TrimSpace(string(token))}
		if err := probe(c.Addr); err != nil {
			return nil, nil, fmt.Errorf("the admin API at %s does not answer: %w", f.adminAddr, err)
		}
		return c, func() {}, nil
	}
	if ac, err := admin.Discover(f.spool); err == nil {
		if err := probe(ac.Addr); err == nil {
			return &suppress.Client{Addr: ac.Addr, Token: ac.Token}, func() {}, nil
		}
		// A node that stopped (or crashed) leaves admin.addr behind.
	}
	dir := filepath.Join(f.spool, "queue")
	if _, err := os.Stat(dir); err != nil && !create {
		return nil, nil, fmt.Errorf("no spool in %s (is --spool the directory corriere serve uses?): %w", dir, err)
	}
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		if isLocked(err) {
			return nil, nil, fmt.Errorf("the spool %s is in use by a running node, and its admin API does not answer "+
				"(start the node with --admin, or give its address with --admin ADDR): %w", dir, err)
		}
		return nil, nil, err
	}
	return suppress.New(sp, nil), func() { sp.Close() }, nil
}

// probe reports whether something listens at addr.
func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// isLocked recognises Pebble's refusal to open a database another process
// (or this one) holds.
func isLocked(err error) bool {
	return errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) ||
		strings.Contains(err.Error(), "lock held") || strings.Contains(err.Error(), "resource temporarily unavailable")
}

// parseInterleaved parses flags that may come after positional arguments
// ("add a@b.example --tenant acme") and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if status, ok := parseFlags(fs, args); !ok {
			return nil, status, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		args = fs.Args()
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, true
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// isSet reports whether the flag called name was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func suppressionList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("suppression list", "suppression list [--tenant T] [--csv] [--spool DIR]", `
Show the suppressed addresses: address, tenant, category (why: userunknown,
hostunknown, feedback, ...), since when, what added it (bounce, complaint,
manual, import) and the reason (the remote reply of the bounce, an
operator's note). Without --tenant, every tenant's list; --tenant '' is
mail relayed without AUTH.

Examples:
  corriere suppression list --tenant acme
  corriere suppression list --csv > all.csv`)
	var sf storeFlags
	sf.register(fs)
	tenantName := fs.String("tenant", "", "show only this `tenant`'s list (default: every tenant)")
	asCSV := fs.Bool("csv", false, "print CSV (the export format) instead of a table")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "corriere suppression list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	sel := suppress.AllTenants
	if isSet(fs, "tenant") {
		sel = *tenantName
	}
	st, closeStore, err := sf.open(false)
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression list:", err)
		return 1
	}
	defer closeStore()
	if *asCSV {
		if err := st.ExportCSV(stdout, sel); err != nil {
			fmt.Fprintln(stderr, "corriere suppression list:", err)
			return 1
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ADDRESS\tTENANT\tCATEGORY\tSINCE\tSOURCE\tREASON")
	n := 0
	err = st.Scan(sel, func(e suppress.Entry) error {
		n++
		tn := e.Tenant
		if tn == "" {
			tn = "(relay)"
		}
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Address, tn, orDash(string(e.Category)),
			e.Added.Format("2006-01-02 15:04"), orDash(e.Source), orDash(oneLine(e.Reason, 80)))
		return err
	})
	w.Flush()
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression list:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d suppressed\n", n)
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

func suppressionAdd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("suppression add", "suppression add --tenant T --reason TEXT [--category C] ADDR...", `
Suppress addresses for one tenant: from now on the tenant's mail to them is
refused at RCPT (or dropped, in drop mode). An address already suppressed
gets the new reason and date. Use it when a recipient asks a tenant's
support to stop, or to block an address known to be a spam trap.

Examples:
  corriere suppression add --tenant acme --reason "asked to stop, ticket 4711" mario@example.it
  corriere suppression add --tenant '' --category trap --reason "spam trap" trap@example.net`)
	var sf storeFlags
	sf.register(fs)
	tenantName := fs.String("tenant", "", "the `tenant` whose list to add to ('' for relayed mail); required")
	reason := fs.String("reason", "", "why, in a `sentence` (shown in the refusal); required")
	category := fs.String("category", "manual", "the `category` recorded with the entry")
	fs.SetOutput(stderr)
	addrs, status, ok := parseInterleaved(fs, args)
	if !ok {
		return status
	}
	if !isSet(fs, "tenant") || *reason == "" || len(addrs) == 0 {
		fmt.Fprintln(stderr, "corriere suppression add: --tenant, --reason and at least one address are required")
		return 2
	}
	for _, a := range addrs {
		if _, err := suppress.NormalizeAddress(a); err != nil {
			fmt.Fprintln(stderr, "corriere suppression add:", err)
			return 2
		}
	}
	st, closeStore, err := sf.open(true)
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression add:", err)
		return 1
	}
	defer closeStore()
	for _, a := range addrs {
		e, err := st.Add(suppress.Entry{Tenant: *tenantName, Address: a, Category: event.Category(*category), Reason: *reason, Source: suppress.SourceManual})
		if err != nil {
			fmt.Fprintln(stderr, "corriere suppression add:", err)
			return 1
		}
		fmt.Fprintf(stdout, "suppressed %s for %s\n", e.Address, suppress.TenantLabel(e.Tenant))
	}
	return 0
}

func suppressionRemove(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("suppression remove", "suppression remove --tenant T ADDR...", `
Take addresses off one tenant's list: the tenant's mail to them is
delivered again. Use it when an address was suppressed by mistake (a
mailbox that came back, a misread bounce). Exits 1 if an address was not
on the list (the others are still removed).

Example:
  corriere suppression remove --tenant acme mario@example.it`)
	var sf storeFlags
	sf.register(fs)
	tenantName := fs.String("tenant", "", "the `tenant` whose list to remove from ('' for relayed mail); required")
	fs.SetOutput(stderr)
	addrs, status, ok := parseInterleaved(fs, args)
	if !ok {
		return status
	}
	if !isSet(fs, "tenant") || len(addrs) == 0 {
		fmt.Fprintln(stderr, "corriere suppression remove: --tenant and at least one address are required")
		return 2
	}
	st, closeStore, err := sf.open(false)
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression remove:", err)
		return 1
	}
	defer closeStore()
	code := 0
	for _, a := range addrs {
		e, err := st.Remove(*tenantName, a)
		switch {
		case errors.Is(err, suppress.ErrNotFound):
			fmt.Fprintf(stderr, "corriere suppression remove: %s is not suppressed for %s\n", a, suppress.TenantLabel(*tenantName))
			code = 1
		case err != nil:
			fmt.Fprintln(stderr, "corriere suppression remove:", err)
			return 1
		default:
			fmt.Fprintf(stdout, "removed %s for %s (was %s since %s)\n", e.Address, suppress.TenantLabel(e.Tenant),
				orDash(string(e.Category)), e.Added.Format("2006-01-02"))
		}
	}
	return code
}

func suppressionImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("suppression import", "suppression import [--spool DIR] FILE.csv|-", `
Add the rows of a CSV file to the lists, replacing entries of the same
tenant and address, so importing a file twice changes nothing. The first
row names the columns: tenant and address are required; category, reason,
source (default import) and added (RFC 3339, default now) are optional, in
any order. Every row is checked first: a file with a bad row is refused
whole, with the line number of each problem. "-" reads standard input.

Example:
  corriere suppression import bounces-from-old-provider.csv

  tenant,address,category,reason,source,added
  acme,mario@example.it,userunknown,550 5.1.1 no such user,bounce,2026-11-30T14:05:00Z`)
	var sf storeFlags
	sf.register(fs)
	fs.SetOutput(stderr)
	files, status, ok := parseInterleaved(fs, args)
	if !ok {
		return status
	}
	if len(files) != 1 {
		fmt.Fprintln(stderr, "corriere suppression import: give one CSV file, or - for standard input")
		return 2
	}
	in := stdin
	if files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			fmt.Fprintln(stderr, "corriere suppression import:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	st, closeStore, err := sf.open(true)
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression import:", err)
		return 1
	}
	defer closeStore()
	n, err := st.ImportCSV(in)
	if err != nil {
		fmt.Fprintf(stderr, "corriere suppression import: %s: nothing imported:\n%v\n", files[0], err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d entries\n", n)
	return 0
}

func suppressionExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("suppression export", "suppression export [--tenant T] [--spool DIR] [FILE|-]", `
Write the lists as CSV (tenant,address,category,reason,source,added), the
format import reads, to FILE or to standard output. Without --tenant,
every tenant's list.

Examples:
  corriere suppression export > suppression.csv
  corriere suppression export --tenant acme acme.csv`)
	var sf storeFlags
	sf.register(fs)
	tenantName := fs.String("tenant", "", "export only this `tenant`'s list (default: every tenant)")
	fs.SetOutput(stderr)
	files, status, ok := parseInterleaved(fs, args)
	if !ok {
		return status
	}
	if len(files) > 1 {
		fmt.Fprintln(stderr, "corriere suppression export: give at most one file")
		return 2
	}
	sel := suppress.AllTenants
	if isSet(fs, "tenant") {
		sel = *tenantName
	}
	st, closeStore, err := sf.open(false)
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression export:", err)
		return 1
	}
	defer closeStore()
	if len(files) == 0 || files[0] == "-" {
		if err := st.ExportCSV(stdout, sel); err != nil {
			fmt.Fprintln(stderr, "corriere suppression export:", err)
			return 1
		}
		return 0
	}
	// Write next to the target and rename, so a failed export never
	// leaves half a file under the name asked for.
	tmp, err := os.CreateTemp(filepath.Dir(files[0]), ".suppression-*.csv")
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression export:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	err = st.ExportCSV(tmp, sel)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), files[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "corriere suppression export:", err)
		return 1
	}
	return 0
}
