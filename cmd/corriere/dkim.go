package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"corriere/plugins/dkim"
)

func init() {
	register(command{
		name:    "dkim",
		summary: "make DKIM keys and show the DNS records that rules/dkim.lua needs",
		run: func(_ context.Context, args []string) int {
			return runDKIM(args, os.Stdout, os.Stderr)
		},
	})
}

const dkimUsage = `Usage: corriere dkim <keygen|check> [flags]

Outgoing mail is DKIM-signed with the keys that rules/dkim.lua names.

  keygen   make a key pair for a domain and selector: write the private key
           file and print the DNS record to publish and the rules/dkim.lua
           entry to add
  check    load rules/dkim.lua and its keys as the server does, and print
           every key with the DNS TXT record it needs

Run 'corriere dkim <subcommand> --help' for its flags.
`

func runDKIM(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, dkimUsage)
		return 0
	}
	switch args[0] {
	case "keygen":
		return dkimKeygen(args[1:], stdout, stderr)
	case "check":
		return dkimCheck(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "corriere dkim: unknown subcommand %q\n\n%s", args[0], dkimUsage)
		return 2
	}
}

const keygenDescription = `
Make a DKIM key pair for --domain under --selector. The private key is
written to a new file of mode 0600 in --out (never over an existing file);
the command prints the DNS TXT record to publish, split into strings of at
most 255 octets as DNS requires, and the entry to add to rules/dkim.lua.

RSA (2048 bits) is what every receiver verifies. Ed25519 (RFC 8463) is
shorter and faster; sign with both by making one key of each under two
selectors and listing both in the domain's active list.

Rotating a key (every 6 to 12 months, or at once if the key leaked):

  1. corriere dkim keygen --domain D --selector NEW
     Publish NEW's TXT record. Add NEW's key to the domain's keys in
     rules/dkim.lua, leaving active = { "OLD" }: the server loads and checks
     it without signing with it yet.
  2. Wait until the record is visible everywhere: at least its TTL (an
     hour or a day, as your DNS says) after publishing.
     corriere dkim check shows the record each key needs.
  3. Set active = { "NEW" }. The server picks the change up on the next
     policy reload, without a restart.
  4. Keep OLD's record for a week, so that mail signed before the switch
     (queued, retried, or read late by a receiver) still verifies; then
     remove OLD's record, its entry and its key file.

Example:

  corriere dkim keygen --domain example.com --selector c2025a
  corriere dkim keygen --domain example.com --selector c2025e --algorithm ed25519`

func dkimKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dkim keygen", "dkim keygen --domain D --selector S [--algorithm rsa|ed25519] [--bits 2048] [--out DIR]", keygenDescription)
	domain := fs.String("domain", "", "signing `domain` (d=), usually the From: domain")
	selector := fs.String("selector", "", "`selector` (s=): a new name for each key, e.g. c2025a")
	algorithm := fs.String("algorithm", "rsa", "key `type`: rsa or ed25519")
	bits := fs.Int("bits", 2048, "RSA key `size`, at least 2048")
	rules := fs.String("rules", "./rules", "policy data `directory` where rules/dkim.lua lives; key paths are relative to it")
	out := fs.String("out", "", "`directory` for the key file (default: keys/ in --rules)")
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 || *domain == "" || *selector == "" {
		fmt.Fprintln(stderr, "corriere dkim keygen: --domain and --selector are required, and nothing else")
		return 2
	}
	opts := dkim.KeyOptions{Domain: *domain, Selector: *selector}
	switch *algorithm {
	case "rsa", dkim.RSASHA256:
		opts.Algorithm, opts.Bits = dkim.RSASHA256, *bits
	case "ed25519", dkim.Ed25519SHA256:
		opts.Algorithm = dkim.Ed25519SHA256
	default:
		fmt.Fprintf(stderr, "corriere dkim keygen: --algorithm %q: want rsa or ed25519\n", *algorithm)
		return 2
	}
	k, err := dkim.GenerateKey(opts)
	if err != nil {
		fmt.Fprintln(stderr, "corriere", err)
		return 1
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(*rules, "keys")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(stderr, "corriere dkim keygen:", err)
		return 1
	}
	path := filepath.Join(dir, k.FileName())
	if err := dkim.WriteKeyFile(path, k.PEM); err != nil {
		fmt.Fprintln(stderr, "corriere", err)
		return 1
	}
	rel := path
	if r, err := filepath.Rel(*rules, path); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	} else if abs, err := filepath.Abs(path); err == nil {
		rel = abs
	}

	fmt.Fprintf(stdout, "Wrote the private key to %s (mode 0600). Keep it secret; back it up.\n\n", path)
	fmt.Fprintf(stdout, "Publish this DNS TXT record:\n\n")
	fmt.Fprintf(stdout, "  name   %s\n", k.RecordName)
	fmt.Fprintf(stdout, "  value  %s\n\n", dkim.QuotedTXT(k.Record))
	fmt.Fprintf(stdout, "As a zone file line:\n\n%s\n\n", k.ZoneLine(3600))
	fmt.Fprintf(stdout, "Then add the key to the domain's entry in domains in %s:\n\n%s\n",
		filepath.Join(*rules, dkim.FileName), k.RulesSnippet(rel))
	fmt.Fprintf(stdout, "If the domain already signs, add only the keys line and keep its active\nselector until the record is published (see --help on rotation).\n")
	return 0
}

func dkimCheck(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("dkim check", "dkim check [--rules DIR]", `
Load rules/dkim.lua and every key file it names exactly as the server does,
and print each key: domain, selector, algorithm, whether it signs now, and
the DNS TXT record that must publish it. Exits 1 with file:line on the first
problem.`)
	rules := flags.String("rules", "./rules", "policy data `directory` where rules/dkim.lua lives")
	flags.SetOutput(stderr)
	if status, ok := parseFlags(flags, args); !ok {
		return status
	}
	r, err := dkim.Load(*rules, slog.New(slog.NewTextHandler(stderr, nil)))
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "no %s: messages leave unsigned\n", filepath.Join(*rules, dkim.FileName))
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, k := range r.Keys() {
		state := "waiting (not in active)"
		if k.Active {
			state = "signing"
		}
		var roles []string
		if k.Platform {
			roles = append(roles, "platform")
		}
		if k.Tenant != "" {
			roles = append(roles, "tenant "+k.Tenant)
		}
		role := ""
		if len(roles) > 0 {
			role = " (" + strings.Join(roles, ", ") + ")"
		}
		fmt.Fprintf(stdout, "%s s=%s %s%s: %s\n  key     %s\n  publish %s TXT %s\n\n",
			k.Domain, k.Selector, k.Algorithm, role, state, k.File, k.RecordName, dkim.QuotedTXT(k.Record))
	}
	fmt.Fprintf(stdout, "ok: %d keys in %s\n", len(r.Keys()), r.File)
	return 0
}
