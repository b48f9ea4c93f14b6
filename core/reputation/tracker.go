package reputation

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"corriere/core/event"
	"corriere/core/spool"
)

// Dimension says what a row's Name names.
type Dimension string

// The dimensions reputation is kept by. Each is crossed with the provider.
const (
	// ByProvider rows name a provider, all sources, tenants and classes
	// together.
	ByProvider Dimension = "provider"
	// ByIP rows name a source IP ("" for the system's choice).
	ByIP Dimension = "ip"
	// ByTenant rows name a tenant.
	ByTenant Dimension = "tenant"
	// ByClass rows name a class of mail.
	ByClass Dimension = "class"
)

// dimensionOrder sorts rows: providers first, then IPs, tenants, classes.
var dimensionOrder = map[Dimension]int{ByProvider: 0, ByIP: 1, ByTenant: 2, ByClass: 3}

// Bucket sizes and how many of each the windows need.
const (
	fineBucket   = 5 * time.Minute
	fineBuckets  = int64(time.Hour / fineBucket)
	hourBucket   = time.Hour
	dayBuckets   = 24
	weekBuckets  = 7 * 24
	resFine      = 'm'
	resHour      = 'h'
	keyspaceName = "reputation"
)

// Options configure a Tracker.
type Options struct {
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
	// FlushInterval is how often changed buckets are written to the
	// spool. The default value is 10 seconds.
	FlushInterval time.Duration
	// Logger logs write failures. The default value is slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields of o with their documented default
// values.
func (o *Options) EnsureDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// key names one row.
type key struct {
	dim            Dimension
	name, provider string
}

// series are one row's buckets, by bucket number (time since the epoch
// divided by the bucket size).
type series struct {
	fine, hourly map[int64]*Counts
}

// bucketRef names one bucket of one row, for the writes still due.
type bucketRef struct {
	res    byte
	bucket int64
	key    key
}

// Tracker counts reputation from events and keeps it in the spool. Its
// methods are safe for concurrent use.
type Tracker struct {
	opts Options
	ks   *spool.Keyspace

	mu          sync.Mutex
	rows        map[key]*series
	dirty       map[bucketRef]struct{}
	suspensions map[Scope]Suspension

	stop chan struct{}
	done chan struct{}
}

var _ event.Sink = (*Tracker)(nil)

// Open restores the last week's counts from sp and starts writing new
// ones back every opts.FlushInterval until Close.
func Open(sp *spool.Spool, opts Options) (*Tracker, error) {
	opts.EnsureDefaults()
	t := &Tracker{
		opts: opts, ks: sp.Keyspace(keyspaceName),
		rows: map[key]*series{}, dirty: map[bucketRef]struct{}{}, suspensions: map[Scope]Suspension{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	go t.flushLoop()
	return t, nil
}

// load reads the buckets of the spool, and deletes those too old to count
// and those it cannot read.
func (t *Tracker) load() error {
	now := t.opts.Now()
	var stale []string
	err := t.ks.Scan("", func(k string, v []byte) error {
		ref, ok := parseBucketKey(k)
		var c Counts
		if !ok || json.Unmarshal(v, &c) != nil || t.expired(ref.res, ref.bucket, now) {
			stale = append(stale, k)
			return nil
		}
		*t.bucket(ref) = c
		return nil
	})
	if err != nil {
		return fmt.Errorf("reputation: load: %w", err)
	}
	for _, k := range stale {
		if err := t.ks.Delete(k, false); err != nil {
			return fmt.Errorf("reputation: prune: %w", err)
		}
	}
	return nil
}

// expired reports whether a bucket no longer counts in any window.
func (t *Tracker) expired(res byte, bucket int64, now time.Time) bool {
	if res == resFine {
		return bucket <= now.UnixNano()/int64(fineBucket)-fineBuckets
	}
	return bucket <= now.UnixNano()/int64(hourBucket)-weekBuckets
}

// bucket returns the counts of ref, made when missing. t.mu is held or t
// is not shared yet.
func (t *Tracker) bucket(ref bucketRef) *Counts {
	s, ok := t.rows[ref.key]
	if !ok {
		s = &series{fine: map[int64]*Counts{}, hourly: map[int64]*Counts{}}
		t.rows[ref.key] = s
	}
	m := s.hourly
	if ref.res == resFine {
		m = s.fine
	}
	c, ok := m[ref.bucket]
	if !ok {
		c = &Counts{}
		m[ref.bucket] = c
	}
	return c
}

// Emit counts delivery, complaint and tracking events, and follows
// suspensions.
func (t *Tracker) Emit(e *event.Event) {
	switch e.Type {
	case event.Suspended, event.Resumed:
		t.followSuspension(e)
		return
	}
	d, ok := delta(e)
	if !ok {
		return
	}
	at := e.Time
	if at.IsZero() {
		at = t.opts.Now()
	}
	fine, hour := at.UnixNano()/int64(fineBucket), at.UnixNano()/int64(hourBucket)
	keys := rowKeys(e)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		for _, ref := range []bucketRef{{resFine, fine, k}, {resHour, hour, k}} {
			t.bucket(ref).add(&d)
			t.dirty[ref] = struct{}{}
		}
	}
}

// rowKeys returns the rows an event counts in: each dimension it names,
// for its provider and for all providers ("").
func rowKeys(e *event.Event) []key {
	var names []key
	if e.Source != "" || e.MX != "" {
		names = append(names, key{dim: ByIP, name: e.Source})
	}
	if e.Tenant != "" {
		names = append(names, key{dim: ByTenant, name: e.Tenant})
	}
	if e.Class != "" {
		names = append(names, key{dim: ByClass, name: e.Class})
	}
	out := make([]key, 0, 2*len(names)+1)
	for _, k := range names {
		out = append(out, k)
		if e.Provider != "" {
			k.provider = e.Provider
			out = append(out, k)
		}
	}
	if e.Provider != "" {
		out = append(out, key{dim: ByProvider, name: e.Provider, provider: e.Provider})
	}
	return out
}

// flushLoop writes changed buckets until Close.
func (t *Tracker) flushLoop() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			if err := t.Flush(false); err != nil {
				t.opts.Logger.Error("reputation: write", "err", err)
			}
		}
	}
}

// Flush writes the buckets changed since the last flush, synced to disk
// when sync is true, and forgets the buckets no window counts any more.
func (t *Tracker) Flush(sync bool) error {
	now := t.opts.Now()
	type write struct {
		k string
		v []byte
	}
	var writes []write
	var deletes []string
	t.mu.Lock()
	for ref := range t.dirty {
		s := t.rows[ref.key]
		m := s.hourly
		if ref.res == resFine {
			m = s.fine
		}
		v, err := json.Marshal(m[ref.bucket])
		if err != nil {
			t.mu.Unlock()
			return fmt.Errorf("reputation: encode: %w", err)
		}
		writes = append(writes, write{bucketKey(ref), v})
	}
	clear(t.dirty)
	for k, s := range t.rows {
		for res, m := range map[byte]map[int64]*Counts{resFine: s.fine, resHour: s.hourly} {
			for b := range m {
				if t.expired(res, b, now) {
					delete(m, b)
					deletes = append(deletes, bucketKey(bucketRef{res, b, k}))
				}
			}
		}
		if len(s.fine) == 0 && len(s.hourly) == 0 {
			delete(t.rows, k)
		}
	}
	t.mu.Unlock()
	for i, w := range writes {
		if err := t.ks.Set(w.k, w.v, sync && i == len(writes)-1 && len(deletes) == 0); err != nil {
			return fmt.Errorf("reputation: write: %w", err)
		}
	}
	for i, k := range deletes {
		if err := t.ks.Delete(k, sync && i == len(deletes)-1); err != nil {
			return fmt.Errorf("reputation: prune: %w", err)
		}
	}
	return nil
}

// Close stops the background writes and writes what changed, synced. The
// spool must still be open.
func (t *Tracker) Close() error {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.done
	return t.Flush(true)
}

// bucketKey is the spool key of a bucket: resolution, bucket number
// (zero-padded, so that keys sort by time), dimension, provider and name,
// the last two path-escaped.
func bucketKey(ref bucketRef) string {
	return fmt.Sprintf("%c/%012d/%s/%s/%s", ref.res, ref.bucket, ref.key.dim,
		url.PathEscape(ref.key.provider), url.PathEscape(ref.key.name))
}

// parseBucketKey reads a key bucketKey wrote.
func parseBucketKey(k string) (bucketRef, bool) {
	parts := strings.Split(k, "/")
	if len(parts) != 5 || len(parts[0]) != 1 || (parts[0][0] != resFine && parts[0][0] != resHour) {
		return bucketRef{}, false
	}
	b, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return bucketRef{}, false
	}
	dim := Dimension(parts[2])
	if _, ok := dimensionOrder[dim]; !ok {
		return bucketRef{}, false
	}
	provider, err1 := url.PathUnescape(parts[3])
	name, err2 := url.PathUnescape(parts[4])
	if err1 != nil || err2 != nil {
		return bucketRef{}, false
	}
	return bucketRef{res: parts[0][0], bucket: b, key: key{dim: dim, name: name, provider: provider}}, true
}

// sortRows orders rows by dimension, name, then provider (all providers
// first).
func sortRows(rows []Row) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Dimension != b.Dimension {
			return dimensionOrder[a.Dimension] < dimensionOrder[b.Dimension]
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Provider < b.Provider
	})
}
