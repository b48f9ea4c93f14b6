// Package dnscheck checks, from the outside, the DNS that a sender's domain
// needs for mail from this platform to be delivered: SPF for each source IP
// (evaluated by core/spf), the DKIM record of each key in rules/dkim.lua,
// DMARC and whether the platform's mail aligns with it, reverse DNS of the
// source IPs and their HELO names (with the HELO names' SPF), the MX and SPF of the bounce and
// return-path domains, and MTA-STS and TLS-RPT records when they exist.
//
// The platform's own settings (Platform) come from rules/pools.lua,
// rules/tenants/*.lua and the node's configuration; the DKIM keys come from
// the dkim plugin, which the core does not import, through the caller.
//
// A Report is a list of Findings. Each has a Status (ok, warning, error), a
// sentence on what it means for delivery, and, when something is to change,
// the exact record to publish as a zone-file line. A check that could not
// be made because DNS failed is a warning, never an ok. Checks run one after
// another with the Checker's resolver; a Checker is safe for concurrent use.
//
// Monitor re-checks every tenant's sender domains on a schedule, keeps the
// last Report per tenant, and calls back for each finding whose status
// changed since the previous run.
package dnscheck
