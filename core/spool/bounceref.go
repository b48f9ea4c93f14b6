package spool

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"corriere/core/message"
)

// BounceRef is what the spool keeps about a re-enveloped message (one
// with an Author) after it is gone, so that a bounce arriving days after
// the delivery can still be told whose it is: its tenant, its author and
// its recipients. It is written with the message, in the same batch, and
// lives until PruneBounceRefs removes it.
type BounceRef struct {
	// MsgID is the spool ID of the message.
	MsgID string `json:"id"`
	// Tenant is the message's tenant, whose suppression list a bounce
	// feeds.
	Tenant string `json:"tenant,omitempty"`
	// Author receives the message's bounces.
	Author string `json:"author"`
	// Sender is the envelope sender the message left with (before VERP).
	Sender string `json:"sender"`
	// Class is the message's class.
	Class message.Class `json:"class,omitempty"`
	// Subject is the message's Subject, unfolded and bounded.
	Subject string `json:"subject,omitempty"`
	// Received is when the message was accepted.
	Received time.Time `json:"received"`
	// Rcpts are the recipients in envelope order: a VERP address's index
	// points into it.
	Rcpts []string `json:"rcpts"`
	// Forwarded lists the recipients (envelope indexes) whose bounce was
	// forwarded to the author already: each is forwarded once.
	Forwarded []int `json:"forwarded,omitempty"`
	// Complained lists the recipients whose complaint was recorded
	// already: each is recorded once.
	Complained []int `json:"complained,omitempty"`
}

func bounceRefKey(id string) []byte { return append([]byte{prefixBounceRef, 0}, id...) }

// putBounceRef adds m's bounce reference to the batch.
func (b *Batch) putBounceRef(m *message.Message) error {
	ref := BounceRef{
		MsgID: m.ID, Tenant: m.Tenant, Author: m.Author, Sender: m.Sender, Class: m.Class,
		Subject: oneLineField(m.Header.Get("Subject")), Received: m.Received,
		Rcpts: make([]string, len(m.Recipients)),
	}
	for i, r := range m.Recipients {
		ref.Rcpts[i] = r.Addr
	}
	return b.PutBounceRef(&ref)
}

// PutBounceRef writes a bounce reference in the batch: the bounce listener
// records a forwarded bounce in the same commit as the DSN it queues.
func (b *Batch) PutBounceRef(ref *BounceRef) error {
	v, err := json.Marshal(ref)
	if err != nil {
		return fmt.Errorf("spool: encode bounce reference %s: %w", ref.MsgID, err)
	}
	_ = b.b.Set(bounceRefKey(ref.MsgID), v, nil) // fails only on a closed batch
	return nil
}

// maxSubject bounds the subject kept in a bounce reference.
const maxSubject = 200

// oneLineField unfolds a header value and bounds its length.
func oneLineField(s string) string {
	out := make([]rune, 0, min(len(s), maxSubject))
	for _, c := range s {
		if len(out) == maxSubject {
			break
		}
		if c == '\r' || c == '\n' || c == '\t' {
			c = ' '
		}
		out = append(out, c)
	}
	return string(out)
}

// BounceRef returns the bounce reference of message id, or ErrNotFound.
func (s *Spool) BounceRef(id string) (*BounceRef, error) {
	var ref BounceRef
	if err := s.getJSON(bounceRefKey(id), &ref); err != nil {
		return nil, fmt.Errorf("spool: bounce reference %s: %w", id, err)
	}
	return &ref, nil
}

// PruneBounceRefs removes the bounce references of messages whose IDs were
// made before cutoff (message IDs start with their creation time, so this
// is one range deletion, whatever the number of references).
func (s *Spool) PruneBounceRefs(cutoff time.Time) error {
	if err := s.db.DeleteRange(bounceRefKey(""), bounceRefKey(idTime(cutoff)), pebble.NoSync); err != nil {
		return fmt.Errorf("spool: prune bounce references: %w", err)
	}
	return nil
}
