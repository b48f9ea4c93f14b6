package bounce

import (
	"strings"

	"corriere/core/policy"
)

// dsnRecipient is one per-recipient block of an RFC 3464 delivery-status.
type dsnRecipient struct {
	final, original, action, status, diagnostic, remote string
	// category is PowerMTA's own classification of the failure
	// (X-PowerMTA-BounceCategory: bad-mailbox).
	category string
}

// parseDSN reads the machine-readable delivery-status fields of a DSN:
// from a message/delivery-status part, or, for DSNs that lost their MIME
// structure, from DSN fields pasted into the text.
func parseDSN(e *entity) []policy.BounceReport {
	var blocks []string
	for _, p := range e.parts {
		switch p.mediaType {
		case "message/delivery-status", "message/global-delivery-status", "text/delivery-status":
			blocks = append(blocks, string(p.body))
		}
	}
	if len(blocks) == 0 {
		for _, p := range e.parts {
			if !strings.HasPrefix(p.mediaType, "text/") {
				continue
			}
			errText, _ := splitOriginal(string(p.body))
			if hasDSNFields(errText) {
				blocks = append(blocks, errText)
			}
		}
	}
	var rcpts []*dsnRecipient
	reporting := ""
	for _, b := range blocks {
		if reporting == "" {
			reporting = reportingMTA(b)
		}
		rcpts = append(rcpts, readDSNFields(b)...)
	}
	if len(rcpts) == 0 {
		return nil
	}
	// The human-readable part often says more than the fields (which SMTP
	// command failed, or the whole reply when Diagnostic-Code is missing).
	human, general := humanText(e)
	var out []policy.BounceReport
	seen := map[string]bool{}
	for i, r := range rcpts {
		rcpt := cleanAddress(r.final)
		if !validMailbox(rcpt) {
			if o := cleanAddress(r.original); validMailbox(o) || rcpt == "" {
				rcpt = o
			}
		}
		if !validMailbox(rcpt) && len(human) > 0 {
			// A mangled recipient field: the prose names the recipients
			// in the same order.
			if len(human) == len(rcpts) {
				rcpt = human[i].addr
			} else if len(human) == 1 && len(rcpts) == 1 {
				rcpt = human[0].addr
			}
		}
		if rcpt == "" {
			continue
		}
		key := strings.ToLower(rcpt) + "\x00" + strings.ToLower(r.action)
		if seen[key] {
			continue
		}
		seen[key] = true
		f := policy.BounceReport{
			Recipient:  rcpt,
			Action:     r.action,
			Status:     firstStatus(r.status),
			Diagnostic: stripDiagnosticType(r.diagnostic),
			RemoteMTA:  stripDiagnosticType(r.remote),
		}
		// "Status: 4.0.0 (host name lookup failure)": some MTAs say why
		// in a comment, which may be more precise than the reply.
		if c := statusComment(r.status); c != "" && !strings.Contains(strings.ToLower(f.Diagnostic), strings.ToLower(c)) {
			f.Diagnostic = strings.TrimSpace(f.Diagnostic + " (" + c + ")")
		}
		if f.RemoteMTA == "" && remoteHostIn(f.Diagnostic) == "" {
			// The host that wrote the DSN reported the failure itself.
			f.RemoteMTA = reporting
		}
		if r.category != "" {
			// The sending MTA's own verdict, for the rules to weigh.
			f.Diagnostic = strings.TrimSpace(f.Diagnostic + " (X-PowerMTA-BounceCategory: " + r.category + ")")
		}
		hb := human.find(rcpt)
		switch {
		case f.Diagnostic == "" && hb != "":
			f.Diagnostic = hb
		case f.Diagnostic == "" && len(rcpts) == 1:
			f.Diagnostic = general
		case f.Diagnostic != "" && commandOf(f.Diagnostic) == "":
			if c := commandPhrase(hb); c != "" {
				f.Diagnostic += " (" + c + ")"
			}
		}
		out = append(out, f)
	}
	return out
}

// validMailbox reports whether s has a local part and a domain.
func validMailbox(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}

// humanText returns the recipient blocks of a DSN's human-readable part
// and its whole explanation, both without the DSN fields some MTAs repeat
// in it.
func humanText(e *entity) (humanBlocks, string) {
	errText := cutDSNFields(e.errText())
	return recipientBlocks(errText, e.skipper(), nil), generalDiagnostic(errText)
}

// reportingMTA returns the host of a delivery-status block's Reporting-MTA
// field, or "".
func reportingMTA(block string) string {
	for _, fv := range headerLines(block) {
		if fv[0] == "reporting-mta" {
			return stripDiagnosticType(fv[1])
		}
	}
	return ""
}

// cutDSNFields cuts text at the first line that starts DSN fields.
func cutDSNFields(text string) string {
	lower := strings.ToLower(text)
	end := len(text)
	for _, f := range []string{"reporting-mta:", "final-recipient:", "original-recipient:"} {
		if i := strings.Index(lower, "\n"+f); i >= 0 && i < end {
			end = i
		}
		if strings.HasPrefix(lower, f) {
			end = 0
		}
	}
	return text[:end]
}

// hasDSNFields reports whether text carries per-recipient DSN fields.
func hasDSNFields(text string) bool {
	lower := strings.ToLower(text)
	return (strings.Contains(lower, "\nfinal-recipient:") || strings.HasPrefix(lower, "final-recipient:")) &&
		(strings.Contains(lower, "\nstatus:") || strings.Contains(lower, "\naction:"))
}

// readDSNFields splits delivery-status fields into per-recipient blocks.
// Blocks are separated by blank lines; as broken DSNs often omit them, a
// block is also split where a recipient field repeats, and fields that
// stray outside a recipient block are given to the recipient before them.
func readDSNFields(text string) []*dsnRecipient {
	var out []*dsnRecipient
	for _, para := range strings.Split(text, "\n\n") {
		var cur *dsnRecipient
		// Per-recipient fields written before the recipient field wait
		// for it; in a paragraph without one they belong to the recipient
		// before.
		var pending [][2]string
		for _, fv := range headerLines(para) {
			name, value := fv[0], fv[1]
			switch name {
			case "final-recipient", "original-recipient":
				if cur == nil || (name == "final-recipient" && cur.final != "") || (name == "original-recipient" && cur.original != "") {
					if len(out) >= maxRecipients {
						return out
					}
					cur = &dsnRecipient{}
					out = append(out, cur)
					for _, p := range pending {
						cur.set(p[0], p[1])
					}
					pending = nil
				}
				if name == "final-recipient" {
					cur.final = value
				} else {
					cur.original = value
				}
			case "action", "status", "diagnostic-code", "remote-mta", "x-powermta-bouncecategory":
				if cur == nil {
					pending = append(pending, fv)
				} else {
					cur.set(name, value)
				}
			}
		}
		if len(pending) > 0 && len(out) > 0 {
			for _, p := range pending {
				out[len(out)-1].set(p[0], p[1])
			}
		}
	}
	return out
}

// set records one per-recipient field; the first occurrence wins, except
// for Diagnostic-Code, whose repeats are joined.
func (r *dsnRecipient) set(name, value string) {
	switch name {
	case "action":
		if r.action == "" {
			r.action = strings.ToLower(strings.Fields(value + " x")[0])
		}
	case "status":
		if r.status == "" {
			r.status = value
		}
	case "diagnostic-code":
		if r.diagnostic == "" {
			r.diagnostic = value
		} else if !strings.Contains(r.diagnostic, value) {
			r.diagnostic += " " + value
		}
	case "remote-mta":
		if r.remote == "" {
			r.remote = value
		}
	case "x-powermta-bouncecategory":
		if r.category == "" {
			r.category = strings.TrimSpace(value)
		}
	}
}

// headerLines parses "Name: value" lines with folded continuations,
// returning lower-case names and unfolded values. Other lines are skipped.
func headerLines(text string) [][2]string {
	var out [][2]string
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			last := &out[len(out)-1]
			if len(last[1]) < maxDiagnostic {
				last[1] = strings.TrimSpace(last[1] + " " + strings.TrimSpace(line))
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || colon > 40 || strings.ContainsAny(line[:colon], " \t") {
			continue
		}
		out = append(out, [2]string{strings.ToLower(line[:colon]), strings.TrimSpace(line[colon+1:])})
	}
	return out
}

// statusComment returns the text after the code in a Status field value,
// without its parentheses.
func statusComment(v string) string {
	st := firstStatus(v)
	i := strings.Index(v, st)
	if st == "" || i < 0 {
		return ""
	}
	return strings.Trim(strings.TrimSpace(v[i+len(st):]), "()")
}

// firstStatus returns the enhanced status code in a Status field value.
func firstStatus(v string) string {
	if sts := findStatuses(v); len(sts) > 0 {
		return sts[0]
	}
	return ""
}

// stripDiagnosticType removes the "smtp;" or "dns;" type of a DSN field
// value. Other types (such as "x-unix;") are kept: they say the failure came
// from a local program rather than a remote server.
func stripDiagnosticType(v string) string {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, ';')
	if i < 0 || i > 12 {
		return v
	}
	switch strings.ToLower(strings.TrimSpace(v[:i])) {
	case "smtp", "dns", "esmtp", "lmtp":
		return strings.TrimSpace(v[i+1:])
	}
	return v
}
