package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"corriere/core/dane"
	"corriere/core/deliver"
	"corriere/core/dns"
	"corriere/core/extension"
	"corriere/core/message"
	"corriere/core/mtasts"
	"corriere/core/tlsrpt"
)

// outboundTLS builds what the transport needs for the outbound TLS
// policies: the roots certificates are checked against, the MTA-STS
// cache, the DANE resolver and the TLS-RPT recorder, as the Config says.
func (n *Node) outboundTLS(res *dns.Resolver) (opts deliver.Options, tlsConf *tls.Config, err error) {
	var roots *x509.CertPool
	if n.cfg.TLSRoots != "" {
		pem, err := os.ReadFile(n.cfg.TLSRoots)
		if err != nil {
			return opts, nil, fmt.Errorf("node: TLS roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return opts, nil, fmt.Errorf("node: TLS roots %s: no PEM certificate", n.cfg.TLSRoots)
		}
		tlsConf = &tls.Config{RootCAs: roots}
	}
	n.tlsrpt, err = tlsrpt.NewRecorder(tlsrpt.Options{
		Path: filepath.Join(n.cfg.SpoolDir, "tls-rpt.json"), Submitter: n.cfg.Hostname, Resolver: res,
		Mail: n.queueReport, HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}},
		Logger: n.log,
	})
	if err != nil {
		return opts, nil, fmt.Errorf("node: %w", err)
	}
	opts.Reporter = n.tlsrpt
	if !n.cfg.NoMTASTS {
		n.mtasts, err = mtasts.New(mtasts.Options{
			Resolver: res, Path: filepath.Join(n.cfg.SpoolDir, "mta-sts.json"), RootCAs: roots,
			Port: n.cfg.MTASTSPort, Logger: n.log,
		})
		if err != nil {
			return opts, nil, fmt.Errorf("node: %w", err)
		}
		opts.MTASTS = n.mtasts
	}
	if len(n.cfg.DANEResolvers) > 0 {
		if opts.DANE, err = dane.New(n.cfg.DANEResolvers, 0); err != nil {
			return opts, nil, fmt.Errorf("node: %w", err)
		}
	}
	return opts, tlsConf, nil
}

// runTLS refreshes the MTA-STS policies and sends the TLS-RPT reports in
// the background until ctx ends.
func (n *Node) runTLS(ctx context.Context) {
	if n.mtasts != nil {
		n.background.Add(1)
		go func() {
			defer n.background.Done()
			n.mtasts.Run(ctx)
		}()
	}
	n.background.Add(1)
	go func() {
		defer n.background.Done()
		n.tlsrpt.Run(ctx)
	}()
}

// TLSReports returns the node's TLS-RPT recorder, to produce or send a
// day's reports.
func (n *Node) TLSReports() *tlsrpt.Recorder { return n.tlsrpt }

// queueReport spools a TLS-RPT report mail to one recipient and hands it
// to the queue, so that it is delivered like any other mail.
func (n *Node) queueReport(ctx context.Context, from, to string, content []byte) error {
	h, body, err := message.Parse(content)
	if err != nil {
		return fmt.Errorf("node: TLS-RPT report: %w", err)
	}
	now := time.Now()
	m := &message.Message{
		Envelope: message.Envelope{Sender: from, Recipients: []message.Recipient{{Addr: to, Notify: message.NotifyNever}}},
		Header:   h, Body: body, Class: message.Transactional, Received: now,
	}
	// RFC 8460 section 5.3 wants mailed reports DKIM-signed: the signing
	// stages (the dkim plugin, with a key for the node's domain in
	// rules/dkim.lua) sign it; the other stages are for tenants' mail.
	for _, st := range implementers[extension.Stage](n.plugins) {
		if o, ok := st.(extension.StageOrderer); !ok || o.StageOrder() != extension.SignOrder {
			continue
		}
		if err := st.Process(ctx, m); err != nil {
			return fmt.Errorf("node: sign TLS-RPT report: %w", err)
		}
	}
	b := n.spool.NewBatch()
	defer b.Close()
	meta, entries, err := b.Put(m, now)
	if err != nil {
		return fmt.Errorf("node: spool TLS-RPT report: %w", err)
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("node: spool TLS-RPT report: %w", err)
	}
	n.queue.Add(meta, entries)
	return nil
}
