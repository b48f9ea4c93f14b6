package tlsrpt

import "time"

// Policy types of RFC 8460 section 4.3.
const (
	PolicySTS      = "sts"
	PolicyTLSA     = "tlsa"
	PolicyNotFound = "no-policy-found"
)

// Result types of RFC 8460 section 4.3 that Corriere reports.
const (
	ResultStartTLSNotSupported = "starttls-not-supported"
	ResultCertHostMismatch     = "certificate-host-mismatch"
	ResultCertExpired          = "certificate-expired"
	ResultCertNotTrusted       = "certificate-not-trusted"
	ResultValidationFailure    = "validation-failure"
	ResultTLSAInvalid          = "tlsa-invalid"
	ResultDNSSECInvalid        = "dnssec-invalid"
	ResultDANERequired         = "dane-required"
	ResultSTSPolicyFetchError  = "sts-policy-fetch-error"
	ResultSTSPolicyInvalid     = "sts-policy-invalid"
	ResultSTSWebPKIInvalid     = "sts-webpki-invalid"
)

// Result is the outcome of one attempt to open a session under a TLS
// policy, as the delivery records it.
type Result struct {
	// At is when the session was attempted.
	At time.Time
	// Domain is the policy domain: the recipient domain.
	Domain string
	// PolicyType is PolicySTS or PolicyTLSA.
	PolicyType string
	// Policy is the policy as reported: the MTA-STS policy's lines, or
	// the TLSA records.
	Policy []string
	// MXPatterns are the MTA-STS mx patterns (sts only).
	MXPatterns []string
	// MXHost is the MX host of the session.
	MXHost string
	// SendingIP and ReceivingIP are the two ends, where known.
	SendingIP, ReceivingIP string
	// Failure is "" for a successful session, otherwise a result type.
	Failure string
	// Reason says what failed, for the report's failure-reason-code.
	Reason string
}
