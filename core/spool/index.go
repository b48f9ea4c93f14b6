package spool

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"corriere/core/message"
)

// The tenant index has one empty record per message, keyed
// prefixIndex 0 tenant 0 id, written and deleted in the same batch as the
// message's metadata: listing a tenant's messages reads its own keys
// instead of every message of the spool. The record at prefixIndex 1
// marks a spool whose index is complete; a spool written before the index
// existed gets it built once, at Open.
var indexBuilt = []byte{prefixIndex, 1}

func tenantKey(tenant, id string) []byte {
	k := make([]byte, 0, 3+len(tenant)+len(id))
	k = append(k, prefixIndex, 0)
	k = append(k, tenant...)
	k = append(k, 0)
	return append(k, id...)
}

// tenantPrefix is the start of the index keys of tenant's messages.
func tenantPrefix(tenant string) []byte {
	return append(append([]byte{prefixIndex, 0}, tenant...), 0)
}

// tenantOf reads the tenant of message id from its metadata; "" when the
// message has none or is gone.
func (s *Spool) tenantOf(id string) string {
	var t struct {
		Tenant string `json:"tenant"`
	}
	if err := s.getJSON(metaKey(id), &t); err != nil {
		return ""
	}
	return t.Tenant
}

// buildIndex writes the tenant index of a spool written before it existed.
func (s *Spool) buildIndex() error {
	_, closer, err := s.db.Get(indexBuilt)
	if err == nil {
		return closer.Close()
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("spool: index: %w", err)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMeta, 0}, UpperBound: []byte{prefixMeta, 1}})
	if err != nil {
		return fmt.Errorf("spool: index: %w", err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		var t struct {
			Tenant string `json:"tenant"`
		}
		if err := json.Unmarshal(it.Value(), &t); err != nil {
			continue
		}
		_ = b.Set(tenantKey(t.Tenant, string(it.Key()[2:])), nil, nil)
		n++
	}
	_ = b.Set(indexBuilt, nil, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("spool: index: %w", err)
	}
	if n > 0 {
		s.log.Info("spool: built the tenant index", "messages", n)
	}
	return nil
}

// Selector picks messages by what the spool knows of them: every field
// that is set must match.
type Selector struct {
	// Tenant, when set, reads only this tenant's messages, through the
	// index. Use NoTenant for relayed mail, which has none.
	Tenant string
	// Campaign and Class match the message's classification.
	Campaign string
	Class    message.Class
	// Before, when set, takes only messages whose ID sorts before it:
	// IDs start with their time of creation (see IDBefore).
	Before string
}

// NoTenant selects the messages of no tenant (relayed mail) in a Selector.
const NoTenant = "\x00"

// match reports whether meta matches the selector's metadata fields.
func (sel *Selector) match(meta *Meta) bool {
	switch {
	case sel.Campaign != "" && meta.Campaign != sel.Campaign:
		return false
	case sel.Class != "" && meta.Class != sel.Class:
		return false
	}
	return true
}

// Select calls fn with each message matching sel, in ID order (oldest
// first), until fn returns false. With a tenant it reads that tenant's
// index keys and then each message's metadata; without one it reads every
// message's metadata.
func (s *Spool) Select(sel Selector, fn func(meta *Meta) bool) error {
	if sel.Tenant != "" {
		return s.selectTenant(sel, fn)
	}
	opts := &pebble.IterOptions{LowerBound: []byte{prefixMeta, 0}, UpperBound: []byte{prefixMeta, 1}}
	if sel.Before != "" {
		opts.UpperBound = metaKey(sel.Before)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return fmt.Errorf("spool: select: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var meta Meta
		if err := json.Unmarshal(it.Value(), &meta); err != nil {
			continue
		}
		if sel.match(&meta) && !fn(&meta) {
			return nil
		}
	}
	return it.Error()
}

func (s *Spool) selectTenant(sel Selector, fn func(meta *Meta) bool) error {
	tenant := sel.Tenant
	if tenant == NoTenant {
		tenant = ""
	}
	prefix := tenantPrefix(tenant)
	opts := &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}
	if sel.Before != "" {
		opts.UpperBound = tenantKey(tenant, sel.Before)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return fmt.Errorf("spool: select: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key()[len(prefix):])
		meta, err := s.Meta(id)
		if err != nil {
			continue // finished between the index read and this one
		}
		if sel.match(meta) && !fn(meta) {
			return nil
		}
	}
	return it.Error()
}

// Entries returns the pending entries of message id, in recipient order.
func (s *Spool) Entries(id string) ([]*Entry, error) {
	prefix := append(append([]byte{prefixEntry, 0}, id...), 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("spool: entries of %s: %w", id, err)
	}
	defer it.Close()
	var out []*Entry
	for it.First(); it.Valid(); it.Next() {
		_, idx, ok := parseEntryKey(it.Key())
		if !ok {
			continue
		}
		e := &Entry{MsgID: id, Index: idx}
		if err := json.Unmarshal(it.Value(), e); err != nil {
			return nil, fmt.Errorf("spool: entry %s/%d: %w", id, idx, err)
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// ScanEntries calls fn with every pending entry, in message ID order, until
// fn returns false; before, when set, stops at the first message whose ID
// sorts at or after it. It reads the entries with one iterator, without
// any message's metadata, for selections by recipient.
func (s *Spool) ScanEntries(before string, fn func(e *Entry) bool) error {
	opts := &pebble.IterOptions{LowerBound: []byte{prefixEntry, 0}, UpperBound: []byte{prefixEntry, 1}}
	if before != "" {
		opts.UpperBound = append([]byte{prefixEntry, 0}, before...)
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return fmt.Errorf("spool: scan entries: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id, idx, ok := parseEntryKey(it.Key())
		if !ok {
			continue
		}
		e := &Entry{MsgID: id, Index: idx}
		if err := json.Unmarshal(it.Value(), e); err != nil {
			continue
		}
		if !fn(e) {
			return nil
		}
	}
	return it.Error()
}
