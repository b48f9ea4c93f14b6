package tlsrpt

import (
	"time"
)

// Report is an aggregate report (RFC 8460 section 4.4); the JSON names are
// the RFC's.
type Report struct {
	// OrganizationName names the sender of the report.
	OrganizationName string `json:"organization-name"`
	// DateRange is the UTC day the report covers.
	DateRange DateRange `json:"date-range"`
	// ContactInfo is where to write about the report.
	ContactInfo string `json:"contact-info"`
	// ReportID identifies the report: day, policy domain and submitter.
	ReportID string `json:"report-id"`
	// Policies are the results under each policy of the domain.
	Policies []PolicyReport `json:"policies"`
}

// DateRange is the period a report covers.
type DateRange struct {
	// Start is the first second of the day, End the last.
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyReport is the results under one policy.
type PolicyReport struct {
	// Policy is the policy the sessions were under.
	Policy PolicyDesc `json:"policy"`
	// Summary counts the sessions that succeeded and failed.
	Summary Summary `json:"summary"`
	// FailureDetails count the failures by kind, sending IP and MX host.
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// PolicyDesc names a policy.
type PolicyDesc struct {
	// Type is "sts", "tlsa" or "no-policy-found".
	Type string `json:"policy-type"`
	// String is the policy: the MTA-STS policy's lines, or the TLSA
	// records in presentation form.
	String []string `json:"policy-string,omitempty"`
	// Domain is the policy domain.
	Domain string `json:"policy-domain"`
	// MXHost are the MTA-STS policy's mx patterns.
	MXHost []string `json:"mx-host,omitempty"`
}

// Summary counts sessions.
type Summary struct {
	// Successful counts the sessions that met the policy.
	Successful int64 `json:"total-successful-session-count"`
	// Failed counts those that did not.
	Failed int64 `json:"total-failure-session-count"`
}

// FailureDetail counts the sessions that failed one way.
type FailureDetail struct {
	// ResultType is the RFC 8460 result type, such as
	// "starttls-not-supported".
	ResultType string `json:"result-type"`
	// SendingMTAIP is the source address of the sessions.
	SendingMTAIP string `json:"sending-mta-ip,omitempty"`
	// ReceivingMXHostname and ReceivingIP name the MX host.
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	ReceivingIP         string `json:"receiving-ip,omitempty"`
	// FailedSessionCount counts the sessions.
	FailedSessionCount int64 `json:"failed-session-count"`
	// FailureReasonCode says what failed, in words.
	FailureReasonCode string `json:"failure-reason-code,omitempty"`
}
