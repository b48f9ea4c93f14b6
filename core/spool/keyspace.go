package spool

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Keyspace is a named region of the spool's database for a subsystem's own
// small records (warm-up counters, suppression lists). Keys are strings and
// scans are by key prefix.
type Keyspace struct {
	db     *pebble.DB
	space  *space
	name   string
	prefix []byte
}

// Keyspace returns the region called name. Names must not contain NUL.
func (s *Spool) Keyspace(name string) *Keyspace {
	p := append([]byte{prefixKeyspace, 0}, name...)
	p = append(p, 0)
	return &Keyspace{db: s.db, space: s.space, name: name, prefix: p}
}

func (k *Keyspace) key(key string) []byte {
	return append(bytes.Clone(k.prefix), key...)
}

// Get returns the value of key and whether it exists.
func (k *Keyspace) Get(key string) ([]byte, bool, error) {
	v, closer, err := k.db.Get(k.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("spool: %s: get %q: %w", k.name, key, err)
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// Set stores value under key; with sync it returns after the write is on
// disk. Like a settlement, it is refused with ErrNoSpace only when the disk
// is under the floor kept for settlements.
func (k *Keyspace) Set(key string, value []byte, sync bool) error {
	if err := k.space.settle(); err != nil {
		return fmt.Errorf("spool: %s: set %q: %w", k.name, key, err)
	}
	if err := k.db.Set(k.key(key), value, writeOptions(sync)); err != nil {
		return fmt.Errorf("spool: %s: set %q: %w", k.name, key, err)
	}
	return nil
}

// SetAll stores value under every key of keys in one write, which costs
// one commit however many keys there are; with sync it returns after the
// write is on disk. It is refused like Set.
func (k *Keyspace) SetAll(keys []string, value []byte, sync bool) error {
	if err := k.space.settle(); err != nil {
		return fmt.Errorf("spool: %s: set %d keys: %w", k.name, len(keys), err)
	}
	b := k.db.NewBatch()
	defer b.Close()
	for _, key := range keys {
		_ = b.Set(k.key(key), value, nil) // fails only on a closed batch
	}
	if err := b.Commit(writeOptions(sync)); err != nil {
		return fmt.Errorf("spool: %s: set %d keys: %w", k.name, len(keys), err)
	}
	return nil
}

// Delete removes key.
func (k *Keyspace) Delete(key string, sync bool) error {
	if err := k.space.settle(); err != nil {
		return fmt.Errorf("spool: %s: delete %q: %w", k.name, key, err)
	}
	if err := k.db.Delete(k.key(key), writeOptions(sync)); err != nil {
		return fmt.Errorf("spool: %s: delete %q: %w", k.name, key, err)
	}
	return nil
}

// Scan calls fn for every key starting with prefix, in key order, until fn
// returns an error (which Scan returns).
func (k *Keyspace) Scan(prefix string, fn func(key string, value []byte) error) error {
	lower := k.key(prefix)
	upper := prefixEnd(lower)
	it, err := k.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("spool: %s: scan: %w", k.name, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(string(it.Key()[len(k.prefix):]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func writeOptions(sync bool) *pebble.WriteOptions {
	if sync {
		return pebble.Sync
	}
	return pebble.NoSync
}
