package main

import (
	"flag"
	"fmt"
	"io"

	"corriere/core/node"
	"corriere/core/tenant"
)

// httpFlags are the settings of serve for the HTTP injection API.
type httpFlags struct {
	listen, maxRequestSize string
	maxRecipients          int
}

func (h *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.listen, "http-listen", "", "HTTP injection API `address` (POST /api/inject/v1, API keys in the tenant files), over TLS with --tls-cert; default: off")
	fs.StringVar(&h.maxRequestSize, "http-max-request-size", "32M", "largest injection request, a `size` such as 32M; larger ones get 413")
	fs.IntVar(&h.maxRecipients, "http-max-recipients", 1000, "most recipients of one injection request; more get 400")
}

// apply checks the flags and sets them in cfg.
func (h *httpFlags) apply(cfg *node.Config) error {
	n, err := parseSize(h.maxRequestSize)
	if err != nil || n == 0 || n > 1<<40 {
		return fmt.Errorf("--http-max-request-size %q: want a positive size such as 32M", h.maxRequestSize)
	}
	if h.maxRecipients <= 0 {
		return fmt.Errorf("--http-max-recipients %d: want a positive number", h.maxRecipients)
	}
	cfg.HTTPListen, cfg.HTTPMaxRequestSize, cfg.HTTPMaxRecipients = h.listen, int64(n), h.maxRecipients
	return nil
}

func rulesAPIKey(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules apikey", "rules apikey TENANT", `
Make a new API key for TENANT's use of the HTTP injection API. Prints the
key (give it to the tenant: it is shown only now) and the line to add to
the api_keys list of rules/tenants/TENANT.lua, which holds only its hash.`)
	fs.SetOutput(stderr)
	if status, ok := parseFlags(fs, args); !ok {
		return status
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "corriere rules apikey: want one tenant name")
		return 2
	}
	key, hash, err := tenant.NewAPIKey(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "corriere rules apikey:", err)
		return 1
	}
	fmt.Fprintf(stdout, "key: %s\napi_keys = { %q },\n", key, hash)
	return 0
}
