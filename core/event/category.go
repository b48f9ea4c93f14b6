package event

import (
	"fmt"
	"sort"
)

// Category is the reason of a delivery outcome in the bounce taxonomy
// (Sisimai's: "userunknown", "mailboxfull", "blocked", ...), or the kind of
// an operational event (PolicyLoaded, HookQuarantined, ...). It is a string
// so that the event log, the suppression lists and Lua see plain words;
// Valid says whether a value is one of the taxonomy.
//
// It lives here, in the package every other one may import, because it
// travels from the policy (policy.Verdict, bounce rules, Lua verdicts)
// through delivery and DSNs to events and suppression entries.
type Category string

// The bounce taxonomy: every category a bounce rule or the built-in
// classification may give. The list follows Sisimai's reasons.
const (
	CategoryAuthFailure     Category = "authfailure"
	CategoryBadReputation   Category = "badreputation"
	CategoryBlocked         Category = "blocked"
	CategoryContentError    Category = "contenterror"
	CategoryDelivered       Category = "delivered"
	CategoryExceedLimit     Category = "exceedlimit"
	CategoryExpired         Category = "expired"
	CategoryFailedSTARTTLS  Category = "failedstarttls"
	CategoryFeedback        Category = "feedback"
	CategoryFiltered        Category = "filtered"
	CategoryHasMoved        Category = "hasmoved"
	CategoryHostUnknown     Category = "hostunknown"
	CategoryMailboxFull     Category = "mailboxfull"
	CategoryMailerError     Category = "mailererror"
	CategoryMesgTooBig      Category = "mesgtoobig"
	CategoryNetworkError    Category = "networkerror"
	CategoryNoRelaying      Category = "norelaying"
	CategoryNotAccept       Category = "notaccept"
	CategoryNotCompliantRFC Category = "notcompliantrfc"
	// CategoryOnHold is given to a failure whose diagnostic no rule
	// recognises.
	CategoryOnHold          Category = "onhold"
	CategoryPolicyViolation Category = "policyviolation"
	CategoryRejected        Category = "rejected"
	CategoryRequirePTR      Category = "requireptr"
	CategorySecurityError   Category = "securityerror"
	CategorySpamDetected    Category = "spamdetected"
	CategorySpeeding        Category = "speeding"
	CategorySuppressed      Category = "suppressed"
	CategorySuspend         Category = "suspend"
	CategorySyntaxError     Category = "syntaxerror"
	CategorySystemError     Category = "systemerror"
	CategorySystemFull      Category = "systemfull"
	CategoryTooManyConn     Category = "toomanyconn"
	// CategoryUndefined is given to a failure without any diagnostic.
	CategoryUndefined     Category = "undefined"
	CategoryUserUnknown   Category = "userunknown"
	CategoryVacation      Category = "vacation"
	CategoryVirusDetected Category = "virusdetected"
)

// taxonomy is the bounce taxonomy, sorted for Valid's binary search.
var taxonomy = []Category{
	CategoryAuthFailure, CategoryBadReputation, CategoryBlocked, CategoryContentError, CategoryDelivered,
	CategoryExceedLimit, CategoryExpired, CategoryFailedSTARTTLS, CategoryFeedback, CategoryFiltered,
	CategoryHasMoved, CategoryHostUnknown, CategoryMailboxFull, CategoryMailerError, CategoryMesgTooBig,
	CategoryNetworkError, CategoryNoRelaying, CategoryNotAccept, CategoryNotCompliantRFC, CategoryOnHold,
	CategoryPolicyViolation, CategoryRejected, CategoryRequirePTR, CategorySecurityError, CategorySpamDetected,
	CategorySpeeding, CategorySuppressed, CategorySuspend, CategorySyntaxError, CategorySystemError,
	CategorySystemFull, CategoryTooManyConn, CategoryUndefined, CategoryUserUnknown, CategoryVacation,
	CategoryVirusDetected,
}

// Categories of events outside delivery outcomes. Valid is false for them:
// no bounce rule or policy verdict may give them.
const (
	// PolicyLoaded is the category of a PolicyLoad event for a policy
	// generation that became current.
	PolicyLoaded Category = "loaded"
	// PolicyRefused is the category of a PolicyLoad event for a policy
	// that failed to load; the previous generation, if any, stays.
	PolicyRefused Category = "refused"
	// HookQuarantined is the category of a PolicyLoad event for a hook
	// (and tenant, and client) put in quarantine after budget failures.
	HookQuarantined Category = "quarantined"
	// HookReleased is the category of a PolicyLoad event for a hook
	// released from quarantine.
	HookReleased Category = "released"
	// CategoryWarmup is the category of a Deferred event for a recipient
	// that a source's warm-up schedule postponed.
	CategoryWarmup Category = "warmup"
	// CategoryForgedVERP is the category of a Rejected event for a bounce
	// whose VERP address does not carry a valid signature.
	CategoryForgedVERP Category = "forged_verp"
	// MachineOpen is the category of an Opened event for a pixel fetched
	// by a machine on the reader's behalf (Apple Mail Privacy Protection,
	// Gmail's image proxy): it says the message reached the mailbox, not
	// that someone read it. A human open has no category.
	MachineOpen Category = "machine"
	// ScannerClick is the category of a Clicked event for a link followed
	// by a security scanner (a HEAD request, a click seconds after
	// delivery, a scanner's network). A human click has no category.
	ScannerClick Category = "scanner"
	// ClusterFallback is the category of a Cluster event for a node that
	// cannot reach Redis and keeps to its share of each limit.
	ClusterFallback Category = "fallback"
	// ClusterReconciled is the category of a Cluster event for a node
	// that reached Redis again and gave back what it counted meanwhile.
	ClusterReconciled Category = "reconciled"
)

// Valid reports whether c is a category of the bounce taxonomy.
func (c Category) Valid() bool {
	i := sort.Search(len(taxonomy), func(i int) bool { return taxonomy[i] >= c })
	return i < len(taxonomy) && taxonomy[i] == c
}

// ParseCategory returns s as a Category, or an error if s is not a
// category of the bounce taxonomy.
func ParseCategory(s string) (Category, error) {
	c := Category(s)
	if !c.Valid() {
		return "", fmt.Errorf("unknown category %q", s)
	}
	return c, nil
}
