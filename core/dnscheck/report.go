package dnscheck

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is how a finding stands.
type Status string

// The statuses of a finding.
const (
	// OK means the record is as delivery needs it.
	OK Status = "ok"
	// Warning means mail goes out, but some receivers may treat it worse,
	// or the check could not be made.
	Warning Status = "warning"
	// Error means mail from the platform fails this check: receivers may
	// reject it or file it as spam.
	Error Status = "error"
)

// Check names the kind of a finding.
type Check string

// The checks.
const (
	// CheckSPF is an SPF evaluation of a domain or a HELO name.
	CheckSPF Check = "spf"
	// CheckDKIM is a DKIM key record, or the signing of a domain.
	CheckDKIM Check = "dkim"
	// CheckDMARC is a DMARC record, or the alignment of the mail.
	CheckDMARC Check = "dmarc"
	// CheckPTR is the reverse DNS and HELO name of a source IP.
	CheckPTR Check = "ptr"
	// CheckMX is the MX of a bounce or return-path domain.
	CheckMX Check = "mx"
	// CheckMTASTS is an MTA-STS record (RFC 8461).
	CheckMTASTS Check = "mta-sts"
	// CheckTLSRPT is a TLS-RPT record (RFC 8460).
	CheckTLSRPT Check = "tls-rpt"
)

// Finding is the result of one check of one thing.
type Finding struct {
	// Domain is the domain checked; for the reverse DNS of source IPs,
	// the platform's (empty).
	Domain string `json:"domain,omitempty"`
	Check  Check  `json:"check"`
	// Subject is what was checked within the domain: a source IP, a DKIM
	// record name, the DMARC record name.
	Subject string `json:"subject"`
	Status  Status `json:"status"`
	// Meaning is one sentence on what the finding means for delivery.
	Meaning string `json:"meaning"`
	// Detail is what was found: the record, the matching mechanism, the
	// lookups used.
	Detail string `json:"detail,omitempty"`
	// Fix is the exact record to publish or change, as a zone-file line,
	// or the step to take; empty when nothing is to change.
	Fix string `json:"fix,omitempty"`
}

// Key identifies a finding across runs, for telling what changed.
func (f Finding) Key() string {
	return string(f.Check) + " " + f.Domain + " " + f.Subject
}

// Report is the result of a check of some domains.
type Report struct {
	// Tenant is the tenant whose settings the check used, if any.
	Tenant  string    `json:"tenant,omitempty"`
	Domains []string  `json:"domains"`
	Checked time.Time `json:"checked"`
	// Findings are in the order the checks ran: the bounce and
	// return-path domains (MX, SPF); then per sender domain SPF, DKIM,
	// DMARC, MTA-STS, TLS-RPT; then reverse DNS and HELO of the sources.
	Findings []Finding `json:"findings"`
	// Rotation explains how to rotate a DKIM key, when a DKIM finding
	// asks for a change.
	Rotation string `json:"rotation,omitempty"`
}

// Count returns how many findings have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, f := range r.Findings {
		if f.Status == s {
			n++
		}
	}
	return n
}

// RotationSteps explains a DKIM key rotation.
const RotationSteps = `Rotating a DKIM key without losing a signature:
  1. corriere dkim keygen --domain D --selector NEW, publish NEW's TXT record,
     and add NEW's key to the domain in rules/dkim.lua, keeping active = { "OLD" }.
  2. Wait at least the record's TTL, until corriere dns check shows NEW's record ok.
  3. Set active = { "NEW" }; the next policy reload signs with it.
  4. Keep OLD's record a week for mail still queued or read late, then remove
     OLD's record, its entry and its key file.`

// WriteText writes the report for a person: one block per finding, errors
// and warnings with their meaning and fix, and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	domain := "\x00"
	for _, f := range r.Findings {
		if f.Domain != domain {
			domain = f.Domain
			name := domain
			if name == "" {
				name = "platform (source IPs)"
			}
			fmt.Fprintf(&b, "\n%s\n", name)
		}
		fmt.Fprintf(&b, "  %-7s %-7s %s: %s\n", strings.ToUpper(string(f.Status)), f.Check, f.Subject, f.Meaning)
		if f.Detail != "" {
			fmt.Fprintf(&b, "          found:   %s\n", f.Detail)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "          publish: %s\n", strings.ReplaceAll(f.Fix, "\n", "\n                   "))
		}
	}
	if r.Rotation != "" {
		fmt.Fprintf(&b, "\n%s\n", r.Rotation)
	}
	fmt.Fprintf(&b, "\n%d errors, %d warnings, %d ok\n", r.Count(Error), r.Count(Warning), r.Count(OK))
	_, err := io.WriteString(w, strings.TrimPrefix(b.String(), "\n"))
	return err
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
