package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"corriere/core/httpin"
)

// startHTTP takes the HTTP injection API's address when one is configured;
// the API hands its messages to the SMTP server's path (ingest.Submit).
func (n *Node) startHTTP(tlsConf *tls.Config, undo *cleanups) (err error) {
	if n.cfg.HTTPListen == "" {
		return nil
	}
	n.httpIn, err = httpin.New(httpin.Options{
		Submitter: n.ingest, Tenants: n.policy, TLS: tlsConf, Logger: n.log,
		MaxRequestSize: n.cfg.HTTPMaxRequestSize, MaxRecipients: n.cfg.HTTPMaxRecipients,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if n.httpLn, err = net.Listen("tcp", n.cfg.HTTPListen); err != nil {
		return fmt.Errorf("node: HTTP listener %s: %w", n.cfg.HTTPListen, err)
	}
	undo.add(func() { n.httpLn.Close() })
	return nil
}

// serveHTTP serves the HTTP injection API, when there is one.
func (n *Node) serveHTTP() {
	if n.httpIn == nil {
		return
	}
	go func() {
		if err := n.httpIn.Serve(n.httpLn); err != nil {
			n.log.Error("HTTP injection API stopped", "err", err)
		}
	}()
}

// shutdownHTTP stops the HTTP injection API, waiting for the requests in
// progress within ctx.
func (n *Node) shutdownHTTP(ctx context.Context) error {
	if n.httpIn == nil {
		return nil
	}
	return n.httpIn.Shutdown(ctx)
}

// HTTPAddr returns the HTTP injection API's address, or "" when it is off.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}
