// Package warmup counts what each warming-up egress IP sends to each
// provider per UTC day, persisted in the spool so that a restart does not
// hand a new IP a fresh day's allowance.
//
// The queue reserves allowance before each transaction from a warming IP
// (Reserve is check-and-add under one lock, so concurrent lanes never
// overshoot a cap together), and the router asks Full to tell the policy
// which IPs to avoid. Counts are written through to the spool without
// waiting for a sync: a crash may forget the last few, never invent any.
package warmup

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"corriere/core/spool"
)

// dayFormat names a UTC day in keys.
const dayFormat = "2006-01-02"

type key struct {
	day, source, provider string
}

// Tracker holds the day's counts.
type Tracker struct {
	ks  *spool.Keyspace
	now func() time.Time

	mu     sync.Mutex
	counts map[key]int64
}

// Open loads today's counts from the spool and deletes older days. now is
// the clock (time.Now if nil).
func Open(sp *spool.Spool, now func() time.Time) (*Tracker, error) {
	if now == nil {
		now = time.Now
	}
	t := &Tracker{ks: sp.Keyspace("warmup"), now: now, counts: map[key]int64{}}
	today := t.day()
	var stale []string
	err := t.ks.Scan("", func(k string, v []byte) error {
		parts := strings.SplitN(k, "/", 3)
		if len(parts) != 3 || len(v) != 8 {
			stale = append(stale, k)
			return nil
		}
		if parts[0] < today {
			stale = append(stale, k)
			return nil
		}
		t.counts[key{parts[0], parts[1], parts[2]}] = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("warmup: load: %w", err)
	}
	for _, k := range stale {
		if err := t.ks.Delete(k, false); err != nil {
			return nil, fmt.Errorf("warmup: prune: %w", err)
		}
	}
	return t, nil
}

func (t *Tracker) day() string { return t.now().UTC().Format(dayFormat) }

// Sent returns how many recipients source has sent to provider today.
func (t *Tracker) Sent(source, provider string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[key{t.day(), source, provider}]
}

// Reserve takes up to n recipients of today's allowance of limit for
// source towards provider and returns how many it took.
func (t *Tracker) Reserve(source, provider string, limit, n int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{t.day(), source, provider}
	left := int64(limit) - t.counts[k]
	if left <= 0 || n <= 0 {
		return 0, nil
	}
	take := int64(n)
	if take > left {
		take = left
	}
	t.counts[k] += take
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(t.counts[k]))
	if err := t.ks.Set(k.day+"/"+source+"/"+provider, v[:], false); err != nil {
		return int(take), fmt.Errorf("warmup: record: %w", err)
	}
	return int(take), nil
}

// NextDay returns the start of the next UTC day, when caps reset.
func (t *Tracker) NextDay() time.Time {
	now := t.now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
}
