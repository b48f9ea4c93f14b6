package bounce

import (
	"strings"

	"github.com/emersion/go-message"

	"corriere/core/policy"
)

// parseARF reads a feedback report: an RFC 5965 message/feedback-report,
// or one of the older provider formats that carry the same information (a
// complaint that only attaches the message, an Apple Mail unsubscribe).
func parseARF(e *entity) []policy.BounceReport {
	var fields [][2]string
	found := false
	for _, p := range e.parts {
		if p.mediaType == "message/feedback-report" {
			fields = append(fields, headerLines(string(p.body))...)
			found = true
		}
	}
	if !found {
		_, params, _ := e.header.ContentType()
		if strings.EqualFold(params["report-type"], "feedback-report") {
			// The report part lost its type: look for its fields in the
			// text parts.
			for _, p := range e.parts {
				if strings.HasPrefix(p.mediaType, "text/plain") && hasField(string(p.body), "feedback-type") {
					fields = append(fields, headerLines(string(p.body))...)
					found = true
				}
			}
		}
	}
	if found {
		return arfFromFields(e, fields)
	}
	return legacyComplaint(e)
}

// arfFromFields builds one report per reported recipient.
func arfFromFields(e *entity, fields [][2]string) []policy.BounceReport {
	var feedbackType, reporter string
	var rcpts []string
	for _, fv := range fields {
		switch fv[0] {
		case "feedback-type":
			if feedbackType == "" {
				feedbackType = fv[1]
			}
		case "original-rcpt-to", "removal-recipient":
			if len(rcpts) < maxRecipients {
				rcpts = append(rcpts, cleanAddress(fv[1]))
			}
		case "reporting-mta":
			reporter = stripDiagnosticType(fv[1])
		}
	}
	if feedbackType == "" {
		feedbackType = "abuse"
	}
	if len(rcpts) == 0 {
		if to := e.originalTo(); to != "" {
			rcpts = append(rcpts, to)
		}
	}
	diag := arfDescription(e)
	out := make([]policy.BounceReport, 0, len(rcpts))
	seen := map[string]bool{}
	for _, r := range rcpts {
		if r == "" || seen[strings.ToLower(r)] {
			continue
		}
		seen[strings.ToLower(r)] = true
		out = append(out, policy.BounceReport{Recipient: r, FeedbackType: feedbackType, RemoteMTA: reporter, Diagnostic: diag})
	}
	if len(out) == 0 {
		// A report about nobody we can name is still a report.
		out = append(out, policy.BounceReport{FeedbackType: feedbackType, RemoteMTA: reporter, Diagnostic: diag})
	}
	return out
}

// legacyComplaint recognises complaint formats that predate ARF: a
// "complaint about message from" report that attaches the message
// (Hotmail/Outlook.com's old loop), and the one-click unsubscribe mail of
// Apple Mail (X-Apple-Unsubscribe), which is an opt-out request.
func legacyComplaint(e *entity) []policy.BounceReport {
	if strings.EqualFold(strings.TrimSpace(e.header.Get("X-Apple-Unsubscribe")), "true") {
		from := headerAddress(e.header, "From")
		if from == "" {
			return nil
		}
		return []policy.BounceReport{{Recipient: from, FeedbackType: "opt-out", Diagnostic: collapseSpace(firstLines(e.text(), 3))}}
	}
	subject := strings.ToLower(headerText(e.header, "Subject"))
	if !strings.Contains(subject, "complaint about message from") {
		return nil
	}
	orig := e.original()
	if orig == nil {
		return nil
	}
	h, _ := splitHeader(normalizeNewlines(orig))
	rcpt := cleanAddress(h.Get("X-Hmxmroriginalrecipient"))
	if rcpt == "" {
		rcpt = e.originalTo()
	}
	if rcpt == "" {
		return nil
	}
	return []policy.BounceReport{{Recipient: rcpt, FeedbackType: "abuse", Diagnostic: collapseSpace(subject)}}
}

// originalTo returns the first To address of the attached original message.
func (e *entity) originalTo() string {
	orig := e.original()
	if orig == nil {
		return ""
	}
	h, _ := splitHeader(normalizeNewlines(orig))
	if to := headerAddress(h, "To"); strings.Contains(to, "@") {
		return to
	}
	return ""
}

// arfDescription is the first lines of the report's human-readable part.
func arfDescription(e *entity) string {
	for _, p := range e.parts {
		if p.mediaType == "text/plain" {
			return collapseSpace(firstLines(string(p.body), 5))
		}
	}
	return ""
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// hasField reports whether text has a line starting with "name:".
func hasField(text, name string) bool {
	for _, fv := range headerLines(text) {
		if fv[0] == name {
			return true
		}
	}
	return false
}

// autoSubmitted returns the Auto-Submitted value, lower-case, without
// parameters.
func autoSubmitted(h message.Header) string {
	v, _, _ := strings.Cut(strings.ToLower(h.Get("Auto-Submitted")), ";")
	return strings.TrimSpace(v)
}
