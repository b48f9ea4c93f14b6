// Package policy declares every decision the core delegates: how a message
// is classified and rewritten at ingest, which egress IP a delivery leaves
// from, how fast a provider may be sent to, and what a remote reply or an
// asynchronous bounce means.
//
// The core calls these through the Policy interface and nothing else, so the
// Lua engine (core/luart) and the plain Go Default are interchangeable. A
// Policy must be safe for concurrent use. A method that returns an error has
// failed to decide; the core then takes the safe outcome named on each method
// (a temporary failure at ingest, a retry at delivery), never a silent drop.
package policy

import (
	"context"
	"time"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/reply"
)

// Policy is the set of decisions the core asks for.
type Policy interface {
	// Classify decides tenant, class, campaign and priority of a message at
	// ingest, after DATA and before it is spooled. On error the message is
	// refused with a temporary failure.
	Classify(ctx context.Context, m *message.Message) (Classification, error)

	// Rewrite edits a classified message in place: header fields (add, set,
	// remove) and the envelope (sender, Author for re-enveloping). On error
	// the message is refused with a temporary failure.
	Rewrite(ctx context.Context, m *message.Message) error

	// Provider names the mailbox provider that operates an MX host, for
	// example "gmail" for "alt1.aspmx.l.google.com". Queues, limits and
	// statistics are kept per provider. It must not fail: unknown hosts get
	// a provider of their own (conventionally the MX host's domain).
	Provider(mxHost string) string

	// Route chooses the egress for one delivery: pool, source IP, HELO name.
	// It is called before every attempt, so a policy reload or a change in
	// live counters moves traffic at once. On error the attempt is retried.
	Route(ctx context.Context, d *Delivery) (Route, error)

	// Shape returns the limits for sending to provider from source: an IP,
	// "" when the system picks the source address, or AllSources for the
	// provider as a whole (every source together). The core asks again after
	// every policy reload. On error the previous limits stay.
	Shape(ctx context.Context, provider, source string) (Limits, error)

	// OnResponse interprets one SMTP reply (or connection failure) from a
	// delivery attempt. On error the recipient is retried.
	OnResponse(ctx context.Context, a *Attempt) (Verdict, error)

	// OnBounce classifies one failed recipient of an asynchronous bounce or
	// feedback report. On error the report is kept unclassified ("unknown").
	OnBounce(ctx context.Context, r *BounceReport) (BounceVerdict, error)
}

// AllSources is the source Shape is asked about for limits that hold for a
// provider as a whole, across every source IP.
const AllSources = "*"

// Classification is what Classify decides.
type Classification struct {
	// Tenant owns the message; it defaults to the authenticated tenant.
	Tenant string
	// Class selects queues, IPs and priority.
	Class message.Class
	// Campaign groups messages of one send, for statistics and for headers
	// that let providers recognise a campaign.
	Campaign string
	// Priority orders messages within a class; higher goes first.
	Priority int
}

// Delivery describes one recipient about to be delivered, as Route sees it.
type Delivery struct {
	// Message is the message being delivered (header and envelope only are
	// guaranteed; the body may be absent).
	Message *message.Message
	// Recipient is the recipient address.
	Recipient string
	// Domain is the recipient's domain.
	Domain string
	// Provider is the provider of the MX hosts of Domain.
	Provider string
	// MXHost is the most preferred MX host of Domain.
	MXHost string
	// Attempts counts previous delivery attempts of this recipient.
	Attempts int
	// PreviousSource is the source IP of the last attempt, if any.
	PreviousSource string
	// Pool, when set, is the pool an operator rebound the recipient to
	// (corriere queue rebind): route should take its source from it.
	Pool string
	// Capped lists the warming-up sources that have reached today's cap
	// towards Provider: a route should choose another (see WarmupPolicy).
	Capped []string
}

// Route is the egress Route chooses.
type Route struct {
	// Pool is the name of the egress pool the source belongs to.
	Pool string
	// Source is the IP address to bind; "" lets the system choose.
	Source string
	// Helo is the name to announce in EHLO; "" uses the node's hostname.
	Helo string
	// TLS is how the session is protected; "" means TLSAuto.
	TLS TLSPolicy
}

// Limits are the shaping limits for a provider, or a (provider, source) pair.
// A zero field means "no limit of this kind".
type Limits struct {
	// MaxConnections caps concurrent connections.
	MaxConnections int `json:"max_connections"`
	// MaxMessagesPerConnection closes a connection after this many messages.
	MaxMessagesPerConnection int `json:"max_messages_per_connection"`
	// MaxRecipientsPerMessage caps RCPT TO commands in one transaction.
	MaxRecipientsPerMessage int `json:"max_recipients_per_message"`
	// PerSecond, PerMinute, PerHour and PerDay cap messages sent.
	PerSecond float64 `json:"per_second"`
	PerMinute float64 `json:"per_minute"`
	PerHour   float64 `json:"per_hour"`
	PerDay    float64 `json:"per_day"`
	// Burst is how many messages may go at once above the steady rate.
	Burst int `json:"burst"`
	// CriticalReserve is the share of every PerHour and PerDay volume that
	// only critical mail may use, between 0 and 1: other mail stops at
	// (1 - CriticalReserve) of the volume, so a bulk run never leaves
	// critical mail waiting for the next window. Zero reserves nothing;
	// rules/providers.lua gets DefaultCriticalReserve when it sets none.
	CriticalReserve float64 `json:"critical_reserve"`
	// SuspendDelay is how long a suspension lasts when the verdict that
	// asks for it names no delay. Zero means DefaultSuspendDelay.
	SuspendDelay time.Duration `json:"suspend_delay"`
	// RecoveryInterval is how long a slowed-down rate (a verdict's
	// RateFactor) waits without a new slow-down before it recovers one
	// step. Zero means DefaultRecoveryInterval.
	RecoveryInterval time.Duration `json:"recovery_interval"`
	// RecoveryStep multiplies a slowed-down rate at each recovery, up to
	// full speed; it must be above 1. Zero means DefaultRecoveryStep.
	RecoveryStep float64 `json:"recovery_step"`
}

// Defaults of the Limits fields whose zero value means "the default":
// a suspension without a delay lasts 10 minutes, and a slowed-down rate
// recovers by a quarter every 30 seconds without a new complaint, so
// that a rate cut by half is back to full speed in about 1.5 minutes.
const (
	DefaultSuspendDelay     = 10 * time.Minute
	DefaultRecoveryInterval = 30 * time.Second
	DefaultRecoveryStep     = 1.25
)

// Suspension returns SuspendDelay, or DefaultSuspendDelay when it is zero.
func (l Limits) Suspension() time.Duration {
	if l.SuspendDelay > 0 {
		return l.SuspendDelay
	}
	return DefaultSuspendDelay
}

// Recovery returns RecoveryInterval and RecoveryStep, each replaced by its
// default when it is zero.
func (l Limits) Recovery() (interval time.Duration, step float64) {
	interval, step = l.RecoveryInterval, l.RecoveryStep
	if interval <= 0 {
		interval = DefaultRecoveryInterval
	}
	if step <= 1 {
		step = DefaultRecoveryStep
	}
	return interval, step
}

// DefaultCriticalReserve is the share of the hourly and daily volumes kept
// for critical mail when the Lua policy names none: a tenth, enough for the
// password resets and alerts of a day without starving a newsletter run.
const DefaultCriticalReserve = 0.1

// Stage names the point of an SMTP dialogue a reply answers.
type Stage string

// Stages of a delivery attempt.
const (
	StageConnect Stage = "connect" // TCP connect and greeting
	StageHelo    Stage = "helo"    // EHLO/HELO
	StageTLS     Stage = "starttls"
	StageMail    Stage = "mail"
	StageRcpt    Stage = "rcpt"
	StageData    Stage = "data" // the reply after the final dot
)

// Attempt is one reply to interpret.
type Attempt struct {
	// Stage is where in the dialogue the reply came.
	Stage Stage
	// Reply is the server's reply; for a network failure it is a synthetic
	// 4xx reply whose text says what failed.
	Reply *reply.Reply
	// Network is true when Reply is synthetic (no server reply was read).
	Network bool
	// Recipient is the recipient the reply concerns ("" for session-level
	// replies that concern every recipient of the transaction).
	Recipient string
	// Tenant, Class, Provider, MXHost and Source describe the delivery.
	Tenant   string
	Class    message.Class
	Provider string
	MXHost   string
	Source   string
	// Attempts counts previous attempts of this recipient.
	Attempts int
	// Age is the time since the message was accepted.
	Age time.Duration
}

// Action is what to do after a reply.
type Action string

// Actions a Verdict may take.
const (
	// Deliver marks the recipient delivered.
	Deliver Action = "deliver"
	// Retry defers the recipient for Delay (or the core's retry schedule).
	Retry Action = "retry"
	// Bounce fails the recipient permanently and sends a DSN.
	Bounce Action = "bounce"
	// Suspend defers the recipient and pauses its Scope for Delay.
	Suspend Action = "suspend"
)

// Scope is what a Suspend (or a slowdown) applies to.
type Scope string

// Scopes of a verdict.
const (
	ScopeRecipient Scope = "recipient"
	ScopeProvider  Scope = "provider"
	ScopeSource    Scope = "source" // the (provider, source IP) pair
)

// Verdict is the interpretation of one reply.
type Verdict struct {
	// Action to take.
	Action Action
	// Delay before the next attempt (Retry) or of the suspension (Suspend);
	// zero uses the core's retry schedule.
	Delay time.Duration
	// Category is the reason in the bounce taxonomy (for example
	// "userunknown", "mailboxfull", "toomanyconn", "blocked").
	Category event.Category
	// Scope is what a Suspend applies to.
	Scope Scope
	// RateFactor, when between 0 and 1, multiplies the scope's send rate
	// (for example 0.5 halves it); the core restores it gradually.
	RateFactor float64
	// Hard, with Action Bounce, is true when the address should not be
	// mailed again: the core adds it to the tenant's suppression list. The
	// policy decides it, as on_bounce's BounceVerdict.Hard does for
	// asynchronous bounces; the core never second-guesses the category.
	Hard bool
}

// BounceReport is one failed recipient of an asynchronous bounce or one
// feedback report, as parsed by the bounce listener.
type BounceReport struct {
	// Kind is "dsn" (RFC 3464), "text" (a non-standard bounce), "arf" (an
	// RFC 5965 feedback report) or "autoreply".
	Kind string
	// Recipient is the failed (or complained-about) address.
	Recipient string
	// Action is the RFC 3464 Action field ("failed", "delayed", ...).
	Action string
	// Status is the enhanced status code, if any.
	Status string
	// ReplyCode is the SMTP reply code found in the diagnostic, if any.
	ReplyCode int
	// Diagnostic is the remote server's text (Diagnostic-Code or the
	// relevant lines of a text bounce).
	Diagnostic string
	// RemoteMTA is the host that reported the failure, if known.
	RemoteMTA string
	// FeedbackType is the ARF Feedback-Type ("abuse", ...).
	FeedbackType string
	// Subject and From are the bounce message's own header fields, which
	// help recognise auto-replies and provider-specific texts.
	Subject, From string
}

// BounceVerdict classifies a BounceReport.
type BounceVerdict struct {
	// Category is the reason in the bounce taxonomy.
	Category event.Category
	// Hard is true when the address should not be mailed again.
	Hard bool
}
