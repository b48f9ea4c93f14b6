package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Pending names one pending entry and when it is due: what the queue keeps
// in memory for a recipient that waits, instead of the whole entry.
type Pending struct {
	MsgID string
	Index int
	Due   time.Time
}

// dueOnly decodes the one field of an entry that recovery needs; the rest
// of the JSON is skipped.
type dueOnly struct {
	Due time.Time `json:"due"`
}

// Recover calls fn for every pending entry, in message ID order, with its
// due time only, and rebuilds the spool's bookkeeping of remaining entries.
// It removes messages that have no entries left, entries whose message is
// gone, and content files no message owns. Unlike Scan it neither decodes
// whole entries nor reads any message's metadata, so its time and memory
// grow with the number of entries alone, at a few hundred bytes read per
// entry. Call it once, at start, before any other use.
func (s *Spool) Recover(fn func(p Pending) error) error {
	metas, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMeta, 0}, UpperBound: []byte{prefixMeta, 1}})
	if err != nil {
		return fmt.Errorf("spool: recover: %w", err)
	}
	defer metas.Close()
	entries, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry, 0}, UpperBound: []byte{prefixEntry, 1}})
	if err != nil {
		return fmt.Errorf("spool: recover: %w", err)
	}
	defer entries.Close()

	// Both key ranges are ordered by message ID: walk them side by side.
	var orphans, strays []string
	metas.First()
	remaining := map[string]int{}
	for entries.First(); entries.Valid(); entries.Next() {
		id, idx, ok := parseEntryKey(entries.Key())
		if !ok {
			s.log.Error("spool: skipping malformed entry key", "key", fmt.Sprintf("%q", entries.Key()))
			continue
		}
		// Messages before this entry's have no entries left.
		for metas.Valid() && bytes.Compare(metas.Key()[2:], []byte(id)) < 0 {
			if remaining[string(metas.Key()[2:])] == 0 {
				orphans = append(orphans, string(metas.Key()[2:]))
			}
			metas.Next()
		}
		if !metas.Valid() || !bytes.Equal(metas.Key()[2:], []byte(id)) {
			if len(strays) == 0 || strays[len(strays)-1] != id {
				strays = append(strays, id)
			}
			continue
		}
		var d dueOnly
		if err := json.Unmarshal(entries.Value(), &d); err != nil {
			s.log.Error("spool: skipping unreadable entry", "msg_id", id, "index", idx, "err", err)
			continue
		}
		if remaining[id] == 0 {
			id = string(metas.Key()[2:]) // one copy of the ID per message
		}
		remaining[id]++
		if err := fn(Pending{MsgID: id, Index: idx, Due: d.Due}); err != nil {
			return err
		}
	}
	for ; metas.Valid(); metas.Next() {
		if id := string(metas.Key()[2:]); remaining[id] == 0 {
			orphans = append(orphans, id)
		}
	}
	if err := errors.Join(entries.Error(), metas.Error()); err != nil {
		return fmt.Errorf("spool: recover: %w", err)
	}
	s.mu.Lock()
	s.remaining = remaining
	s.mu.Unlock()
	// Clearing leftovers can wait for the next start when the disk is full.
	if err := s.space.settle(); err != nil {
		s.log.Warn("spool: leftovers of finished messages kept until a start with free space", "err", err)
		return nil
	}
	for _, id := range strays {
		s.log.Error("spool: entries without a message; removing them", "msg_id", id)
		prefix := append(append([]byte{prefixEntry, 0}, id...), 0)
		if err := s.db.DeleteRange(prefix, prefixEnd(prefix), pebble.NoSync); err != nil {
			return fmt.Errorf("spool: remove stray entries of %s: %w", id, err)
		}
	}
	for _, id := range orphans {
		if err := s.deleteMessage(id); err != nil {
			return err
		}
	}
	return s.removeStrayFiles(func(id string) bool {
		_, err := s.Meta(id)
		return !errors.Is(err, ErrNotFound)
	})
}

// Entry returns entry idx of message id, as last written.
func (s *Spool) Entry(id string, idx int) (*Entry, error) {
	e := &Entry{MsgID: id, Index: idx}
	if err := s.getJSON(entryKey(id, idx), e); err != nil {
		return nil, fmt.Errorf("spool: entry %s/%d: %w", id, idx, err)
	}
	return e, nil
}
