package bounce

import (
	"encoding/json"
	"strings"

	"corriere/core/policy"
)

// sesNotification is an Amazon SES notification (bounce, complaint or
// delivery), either bare or wrapped in an SNS envelope whose Message field
// holds it as a JSON string.
type sesNotification struct {
	Message          string `json:"Message"`
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		ReportingMTA      string `json:"reportingMTA"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
	} `json:"delivery"`
}

// parseSES reads the JSON notifications Amazon SES mails (directly or
// through SNS) for bounces, complaints and deliveries.
func parseSES(e *entity) []policy.BounceReport {
	body := strings.TrimSpace(e.text())
	start := strings.IndexByte(body, '{')
	if start < 0 || start > 200 || !strings.Contains(body, "otificationType") && !strings.Contains(body, "eventType") {
		return nil
	}
	n, ok := decodeSES(body[start:])
	if !ok {
		return nil
	}
	if n.Message != "" && n.NotificationType == "" && n.EventType == "" {
		inner, ok := decodeSES(n.Message)
		if !ok {
			return nil
		}
		n = inner
	}
	var out []policy.BounceReport
	switch {
	case n.Bounce != nil:
		for _, r := range n.Bounce.BouncedRecipients {
			diag := stripDiagnosticType(r.DiagnosticCode)
			if diag == "" {
				diag = "Amazon SES " + n.Bounce.BounceType + " bounce: " + n.Bounce.BounceSubType
			}
			action := r.Action
			if action == "" {
				action = "failed"
				if strings.EqualFold(n.Bounce.BounceType, "Transient") {
					action = "delayed"
				}
			}
			out = append(out, policy.BounceReport{Recipient: r.EmailAddress, Action: action, Status: r.Status,
				Diagnostic: diag, RemoteMTA: stripDiagnosticType(n.Bounce.ReportingMTA)})
		}
	case n.Complaint != nil:
		ft := n.Complaint.ComplaintFeedbackType
		if ft == "" {
			ft = "abuse"
		}
		for _, r := range n.Complaint.ComplainedRecipients {
			out = append(out, policy.BounceReport{Kind: KindARF, Recipient: r.EmailAddress, FeedbackType: ft})
		}
	case n.Delivery != nil:
		for _, r := range n.Delivery.Recipients {
			out = append(out, policy.BounceReport{Recipient: r, Action: "delivered",
				Diagnostic: n.Delivery.SMTPResponse, RemoteMTA: n.Delivery.ReportingMTA})
		}
	}
	return out
}

// decodeSES decodes the JSON object at the start of s, ignoring what
// follows it. Mail transports fold long lines, so a failed attempt is
// retried with the line breaks removed.
func decodeSES(s string) (sesNotification, bool) {
	var n sesNotification
	if json.NewDecoder(strings.NewReader(s)).Decode(&n) == nil {
		return n, true
	}
	unfolded := strings.NewReplacer("\n ", "", "\n", "").Replace(s)
	n = sesNotification{}
	if json.NewDecoder(strings.NewReader(unfolded)).Decode(&n) == nil {
		return n, true
	}
	return sesNotification{}, false
}
