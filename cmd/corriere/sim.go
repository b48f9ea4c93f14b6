package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"corriere/core/sim"
)

func init() {
	register(command{
		name:    "sim",
		summary: "run a simulated mail internet (DNS and provider MX servers) on loopback",
		run:     runSim,
	})
}

const simDescription = `
Sim starts a simulated mail internet on loopback, so that you can watch what
Corriere and its policy scripts do against provider-like behaviour without a
single message leaving the machine.

It runs:

  - a DNS server answering for every domain of the world file: the MX, A and
    PTR records of the providers (gmail.com, outlook.com, yahoo.com, libero.it,
    alice.it, a Workspace and an Office 365 company domain, a self-hosted
    office), SPF, DKIM and DMARC of the sender domain negozio-esempio.it, PTR
    records of the MTA's source addresses 127.0.0.2-9, a null-MX domain and
    typo domains that do not exist (gmial.com);

  - one SMTP server per MX host, each on its own 127.0.x.y address and all on
    the same port, behaving like the provider it imitates: greylisting,
    connection and rate limits worded as the provider words them (Gmail 421
    4.7.28, Microsoft 451 4.7.500, Yahoo 421 [TSS04]), unknown users, full
    mailboxes, spam refusals, block lists, STARTTLS, a nolisting domain whose
    primary MX is dead, and a tarpit;

  - with --return-port, the mail providers send on their own: bounces after
    accepting a message (RFC 3464 reports, or qmail and Exchange plain text)
    and ARF complaint reports, delivered to the MX of the sender's domain on
    that port, where Corriere's bounce listener should be.

In the default world the recipient steers the outcome: unknown*@ gets 550
5.1.1, full*@ 452 4.2.2, spam*@ 550 5.7.1, bounce*@ is accepted and bounced a
few seconds later (microsoft, yahoo, libero, tim); a message containing
SIM-SPAM is refused as spam; a connection from 127.0.0.9 meets the block
lists. Every accepted or refused message is logged; Ctrl-C stops the
simulator and prints what each provider saw. Copy and edit the world file to
change providers and behaviours.

Example:

  corriere sim --return-port 2525
  corriere serve --dns 127.0.0.1:5300 --mx-port 2526
`

func runSim(ctx context.Context, args []string) int {
	fs := newFlagSet("sim", "sim [flags]", simDescription)
	worldPath := fs.String("world", "", "world `file`: providers, domains, MX hosts, behaviours and extra DNS records; default: the world built into the binary (the repository's testdata/sim/world.json)")
	dnsAddr := fs.String("dns", "127.0.0.1:5300", "`address` of the simulated DNS server (UDP and TCP)")
	mxPort := fs.Int("mx-port", 2526, "`port` every simulated MX listens on, each on its own 127.0.x.y address (0 picks a free one)")
	returnPort := fs.Int("return-port", 0, "`port` of the bounce and FBL listener at the MX of the sender's domain, where bounces and complaint reports are delivered (0 turns them off)")
	seed := fs.Int64("seed", 1, "seed of random choices, such as which messages draw complaints")
	debug := fs.Bool("debug", false, "log debug details as well (sessions that fail, retries of bounces)")
	logFormat := fs.String("log-format", "text", logFormatUsage)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "corriere sim: unexpected arguments %q\n", fs.Args())
		return 2
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger, err := newLogger(os.Stderr, *logFormat, level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 2
	}
	world, err := sim.LoadWorld(*worldPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 1
	}
	s, err := sim.Start(ctx, world, sim.Options{
		DNSAddr:    *dnsAddr,
		MXPort:     *mxPort,
		ReturnPort: *returnPort,
		Seed:       *seed,
		Logger:     logger,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 1
	}
	defer s.Close()

	fmt.Printf("Simulated mail internet from %s\n\n", *worldPath)
	if err := s.Describe(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 1
	}
	tlsFlags, rootsFile, err := simTLSFlags(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 1
	}
	if rootsFile != "" {
		defer os.Remove(rootsFile)
	}
	fmt.Printf("\nPoint Corriere at it:\n\n  corriere serve --dns %s --mx-port %d%s\n\n", s.DNSAddr(), s.MXPort(), tlsFlags)
	fmt.Println("Send from source addresses 127.0.0.2-127.0.0.9 (127.0.0.9 is block-listed). Ctrl-C stops the simulator.")
	fmt.Printf(`
Mail to the senders' own domains is not simulated: Corriere's DSNs (and, with
--return-port, the providers' bounces and complaint reports) go to the MX of
the sender's domain, which in the default world is 127.0.0.1 (and 127.0.0.10
for re-enveloped mail) on port %d. Nothing listens there unless you run a
server on it; until then the DSNs wait in Corriere's queue (corriere queue
summary) and expire after --max-age. corriere demo runs such a mailbox and
checks every DSN arrives.
`, s.MXPort())

	<-ctx.Done()
	if err := s.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
	}
	fmt.Println()
	if err := s.WriteStats(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "corriere sim: %v\n", err)
		return 1
	}
	return 0
}

// simTLSFlags writes the simulator's certificate to a temporary file,
// which the caller removes, and returns the serve flags that make a node
// verify the simulated MX hosts and policy servers: the certificate as the
// only authority, the MTA-STS policy port and the simulator's DNS as the
// validating resolver for DANE.
func simTLSFlags(s *sim.Sim) (flags, rootsFile string, err error) {
	pemBytes := s.CertificatePEM()
	if pemBytes == nil {
		return "", "", nil
	}
	f, err := os.CreateTemp("", "corriere-sim-roots-*.pem")
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", "", err
	}
	flags = " \\\n      --tls-roots " + f.Name()
	if p := s.PolicyPort(); p != 0 {
		flags += fmt.Sprintf(" --mta-sts-port %d", p)
	}
	return flags + " --dane-resolver " + s.DNSAddr(), f.Name(), nil
}
