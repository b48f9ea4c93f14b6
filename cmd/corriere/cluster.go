package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"text/tabwriter"
	"time"

	"corriere/core/cluster"
)

func init() {
	register(command{name: "cluster", summary: "the nodes sharing limits through Redis, and their shared counters", run: runCluster})
}

const clusterHelp = `
Reads, straight from the Redis the nodes share (--redis, or redis = ... in
the --config file of corriere serve), the live nodes of the cluster, each
with its policy generation and the hash of its policy files (a node left on
an old policy stands out, marked "differs"), and the counters the nodes
share per provider: connections open across the cluster, messages sent in
the current and previous minute, and since Redis started.

Examples:
  corriere cluster status --redis 10.0.0.5:6379
  corriere cluster status --config /etc/corriere/corriere.conf --json
`

func runCluster(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintf(os.Stderr, "Usage: corriere cluster status [flags]\n%s", clusterHelp)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	return clusterStatus(ctx, args[1:], os.Stdout, os.Stderr)
}

func clusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cluster status", "cluster status [--redis ADDR] [--json]", clusterHelp)
	addr := fs.String("redis", "", "Redis `address` host:port the nodes share")
	password := fs.String("redis-password", "", "Redis `password` (AUTH)")
	useTLS := fs.Bool("redis-tls", false, "talk to Redis over TLS")
	ca := fs.String("redis-ca", "", "PEM `file` of the CA that signed Redis's certificate (with --redis-tls)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "corriere cluster status: --redis: no Redis address (give --redis or a --config with redis = ...)")
		return 2
	}
	opts := cluster.Options{Addr: *addr, Password: *password}
	if *useTLS {
		host, _, _ := net.SplitHostPort(*addr)
		opts.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if *ca != "" {
			pem, err := os.ReadFile(*ca)
			if err != nil {
				fmt.Fprintln(stderr, "corriere cluster status:", err)
				return 2
			}
			opts.TLS.RootCAs = x509.NewCertPool()
			opts.TLS.RootCAs.AppendCertsFromPEM(pem)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := cluster.ReadStatus(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "corriere cluster status:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintln(stderr, "corriere cluster status:", err)
			return 1
		}
		return 0
	}
	printClusterStatus(stdout, st)
	return 0
}

// printClusterStatus writes the status as two tables; a policy hash that
// differs from the most common one is marked.
func printClusterStatus(w io.Writer, st cluster.Status) {
	common, most := "", 0
	counts := map[string]int{}
	for _, n := range st.Nodes {
		counts[n.PolicyHash]++
		if counts[n.PolicyHash] > most {
			common, most = n.PolicyHash, counts[n.PolicyHash]
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tSMTP\tGENERATION\tPOLICY HASH\tSTARTED\tSEEN\tREDIS\n")
	for _, n := range st.Nodes {
		hash := short(n.PolicyHash)
		if n.PolicyHash != common {
			hash += " (differs)"
		}
		mode := "shared"
		if n.Fallback {
			mode = "fallback"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s ago\t%s\n", n.ID, n.SMTP, n.Generation, hash,
			n.Started.UTC().Format(time.RFC3339), time.Since(n.Seen).Round(100*time.Millisecond), mode)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d live nodes\n\n", len(st.Nodes))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PROVIDER\tCONNECTIONS\tSENT LAST MINUTE\tSENT\n")
	for _, p := range st.Providers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", p.Name, p.Connections, p.LastMinute, p.Sent)
	}
	tw.Flush()
}

// short returns the first 12 hex digits of a hash.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
