// Package event records every state change of every message and recipient:
// received, delivered, deferred, bounced, expired, and the operational events
// around them (suspensions, complaints, suppressions).
//
// Producers call Bus.Emit; sinks subscribed to the bus (the JSON-lines log,
// live statistics, plugins such as webhooks) each receive every event in
// emission order per producer. Emit never blocks on disk: the log buffers and
// flushes in the background, and a sink that must do slow work queues it.
package event

import (
	"sync"
	"sync/atomic"
	"time"
)

// Type names a kind of event.
type Type string

// Event types. Message events carry MsgID; recipient events also Recipient.
const (
	Received   Type = "received"   // a message was accepted and spooled
	Rejected   Type = "rejected"   // ingest refused a message or recipient
	Delivered  Type = "delivered"  // a recipient was accepted by its MX
	Deferred   Type = "deferred"   // an attempt failed temporarily; retry later
	Bounced    Type = "bounced"    // a recipient failed permanently
	Expired    Type = "expired"    // a recipient outlived the maximum age
	Deleted    Type = "deleted"    // an operator removed a recipient from the queue, without a DSN
	DSNQueued  Type = "dsn"        // a delivery status notification was queued
	Suppressed Type = "suppressed" // an address was refused or dropped as suppressed
	Complained Type = "complained" // a feedback-loop report arrived
	Suspended  Type = "suspended"  // a provider or (provider, IP) was paused
	Resumed    Type = "resumed"    // a suspension ended
	PolicyLoad Type = "policy"     // a policy generation was loaded or refused, a hook quarantined or released
	DNSCheck   Type = "dns_check"  // a finding of a tenant's daily DNS check changed status
	Opened     Type = "opened"     // a tracking pixel was fetched (Category MachineOpen when a proxy fetched it)
	Clicked    Type = "clicked"    // a tracked link was followed (Category ScannerClick when a scanner followed it)
	Cluster    Type = "cluster"    // the node lost or regained the counts it shares with other nodes through Redis
)

// Event is one state change. Zero-valued fields are omitted from the log.
type Event struct {
	Time      time.Time `json:"time"`
	Type      Type      `json:"type"`
	MsgID     string    `json:"msg_id,omitempty"`
	Recipient string    `json:"rcpt,omitempty"`
	Sender    string    `json:"sender,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	Class     string    `json:"class,omitempty"`
	Campaign  string    `json:"campaign,omitempty"`
	Provider  string    `json:"provider,omitempty"`
	MX        string    `json:"mx,omitempty"`
	Source    string    `json:"source_ip,omitempty"`
	Pool      string    `json:"pool,omitempty"`
	// Attempt is the 1-based number of the delivery attempt.
	Attempt int `json:"attempt,omitempty"`
	// Reply is the SMTP reply that caused the event, "451 4.7.1 ...".
	Reply string `json:"reply,omitempty"`
	// Category is the bounce/deferral reason in the bounce taxonomy, or
	// the kind of an operational event (see Category).
	Category Category `json:"category,omitempty"`
	// Hard, on a bounced event, is the policy's verdict that the address
	// must not be mailed again (on_response or on_bounce said hard = true).
	Hard bool `json:"hard,omitempty"`
	// Reason explains the event in a sentence when Reply does not.
	Reason string `json:"reason,omitempty"`
	// Size is the message size in octets (received events).
	Size int `json:"size,omitempty"`
	// Recipients counts recipients (received events).
	Recipients int `json:"rcpts,omitempty"`
	// DurationMs is how long the attempt took.
	DurationMs float64 `json:"duration_ms,omitempty"`
	// AgeMs is the time since the message was received.
	AgeMs float64 `json:"age_ms,omitempty"`
	// Until is the end of a suspension or the next attempt of a deferral.
	Until time.Time `json:"until,omitzero"`
}

// Sink receives events. Emit is called synchronously by producers and must
// return quickly; it must not retain e after returning.
type Sink interface {
	Emit(e *Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(e *Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e *Event) { f(e) }

// Bus fans events out to its sinks. The zero Bus has no sinks and is ready.
type Bus struct {
	mu    sync.Mutex
	sinks atomic.Pointer[[]Sink]
	// Now is the clock used to stamp events without a time. The default
	// value is time.Now.
	Now func() time.Time
}

// Subscribe adds a sink. Events emitted before the call are not replayed.
func (b *Bus) Subscribe(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var next []Sink
	if cur := b.sinks.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	b.sinks.Store(&next)
}

// Emit stamps e with the current time if it has none and hands it to every
// sink. A nil *Bus discards events.
func (b *Bus) Emit(e *Event) {
	if b == nil {
		return
	}
	if e.Time.IsZero() {
		if b.Now != nil {
			e.Time = b.Now()
		} else {
			e.Time = time.Now()
		}
	}
	cur := b.sinks.Load()
	if cur == nil {
		return
	}
	for _, s := range *cur {
		s.Emit(e)
	}
}
