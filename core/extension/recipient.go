package extension

import (
	"context"

	"corriere/core/event"
	"corriere/core/reply"
)

// RecipientCheck is consulted at RCPT TO (the suppression list is one),
// with the name of the authenticated tenant ("" for relayed mail) and the
// normalised recipient address. Its verdict is its error: nil accepts the
// recipient; a *Refusal or a *reply.Reply refuses it with that reply; a
// *Drop accepts it without delivering to it; any other error answers
// 451 4.3.0. The checks run in order and the first verdict wins.
//
// ctx ends after ingest.Options.CheckTimeout, which bounds all the checks
// of one recipient together; the recipient is then answered 451 4.3.0
// whatever the check does, so a check must return soon after ctx ends
// (its late verdict is ignored) rather than keep a goroutine waiting.
type RecipientCheck interface {
	CheckRecipient(ctx context.Context, tenant, rcpt string) error
}

// Drop is the verdict of a RecipientCheck that wants a recipient accepted
// but not delivered, such as a suppressed address of a tenant that prefers
// not to be refused. The RCPT is answered 250 and the recipient is left out
// of the spooled message; when the message is accepted, an
// event.Suppressed naming the message, the recipient, Category and Reason
// is emitted for it. A message whose every recipient is dropped is answered
// 250 after DATA (it gets a message ID for the events) and nothing is
// spooled. A check returns it as a *Drop.
type Drop struct {
	// Category classifies the drop for the event ("userunknown").
	Category event.Category
	// Reason says why in a sentence, for the event and the log.
	Reason string
}

// Error describes the drop; Drop is an error so that CheckRecipient can
// return it.
func (d *Drop) Error() string { return "recipient dropped: " + d.Reason }

// Refusal is an error a RecipientCheck returns to refuse a recipient with
// Reply and have the refusal counted and logged as Reason ("suppressed")
// rather than as the generic "recipient_refused" a bare *reply.Reply gets.
type Refusal struct {
	// Reason is the counter and log key of the refusal, a word.
	Reason string
	// Reply is the answer to RCPT TO.
	Reply *reply.Reply
}

// Error returns the reply.
func (r *Refusal) Error() string { return r.Reply.Error() }

// Unwrap returns the reply, so that reply.From finds it.
func (r *Refusal) Unwrap() error { return r.Reply }
