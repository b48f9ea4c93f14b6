package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"corriere/core/message"
)

// Key prefixes. Each record kind has its own first byte so scans by kind
// are range scans.
const (
	prefixMeta      = 'm'
	prefixContent   = 'c'
	prefixEntry     = 'r'
	prefixKeyspace  = 'x'
	prefixBounceRef = 'b'
	prefixIndex     = 'i'
)

// ErrNotFound is returned for a message that is not in the spool.
var ErrNotFound = errors.New("spool: not found")

// Options configure Open.
type Options struct {
	// Dir is the directory of the Pebble database; it is created if missing.
	Dir string
	// Logger receives Pebble's errors. The default value is slog.Default().
	Logger *slog.Logger
	// CacheSize is Pebble's block cache in bytes. The default value is 64 MiB.
	CacheSize int64
	// MinFree is the free space, in bytes, kept on the spool's filesystem:
	// under it new messages are refused with ErrNoSpace, while settlements
	// (deliveries, deferrals, bounces) go on and free space. The default
	// value is DefaultMinFree (256 MiB), or a quarter of the filesystem when
	// that is smaller. Pebble's memtable is sized to a quarter of it, so that
	// a flush always fits in the reserve.
	MinFree uint64
	// FreeSpace reads the available and total bytes of the filesystem
	// holding a path. The default value is FreeSpace (statfs).
	FreeSpace func(path string) (free, total uint64, err error)
	// SpaceCheckInterval is how often the free space is read in the
	// background; Room and the refusals follow the last reading. The
	// default value is one second.
	SpaceCheckInterval time.Duration
	// FileThreshold is the content size above which a message's content is
	// stored as a file of its own in Dir/content rather than in Pebble:
	// Pebble would copy it into a batch and hold it in a memtable, and its
	// space would return only after a compaction, while a file is written
	// from the message without a copy and deleting it frees the space at
	// once. The default value is 512 KiB.
	FileThreshold int
}

// Meta is what the spool keeps about a message besides its content.
type Meta struct {
	ID         string        `json:"id"`
	Sender     string        `json:"sender"`
	Ret        message.Ret   `json:"ret,omitempty"`
	EnvID      string        `json:"envid,omitempty"`
	UTF8       bool          `json:"utf8,omitempty"`
	Tenant     string        `json:"tenant,omitempty"`
	AuthUser   string        `json:"auth,omitempty"`
	ClientIP   string        `json:"client,omitempty"`
	Helo       string        `json:"helo,omitempty"`
	Received   time.Time     `json:"received"`
	Class      message.Class `json:"class,omitempty"`
	Campaign   string        `json:"campaign,omitempty"`
	Priority   int           `json:"prio,omitempty"`
	Author     string        `json:"author,omitempty"`
	Size       int           `json:"size"`
	Recipients int           `json:"rcpts"`
}

// Entry is the delivery state of one recipient of one message.
type Entry struct {
	// MsgID and Index identify the entry: the message and the recipient's
	// position in its envelope.
	MsgID string `json:"-"`
	Index int    `json:"-"`
	// Rcpt is the recipient with its DSN parameters.
	Rcpt message.Recipient `json:"rcpt"`
	// Attempts counts finished delivery attempts.
	Attempts int `json:"attempts,omitempty"`
	// Due is when the next attempt may start.
	Due time.Time `json:"due"`
	// LastAttempt is when the last attempt ended.
	LastAttempt time.Time `json:"last,omitzero"`
	// LastReply is the last reply or failure, "451 4.7.1 ...".
	LastReply string `json:"reply,omitempty"`
	// LastSource is the source IP of the last attempt.
	LastSource string `json:"source,omitempty"`
	// LastMX is the MX host of the last attempt.
	LastMX string `json:"mx,omitempty"`
	// DelayNotified records that a "delayed" DSN was sent.
	DelayNotified bool `json:"delay_dsn,omitempty"`
}

// Domain returns the recipient's domain.
func (e *Entry) Domain() string {
	if i := strings.LastIndexByte(e.Rcpt.Addr, '@'); i >= 0 {
		return e.Rcpt.Addr[i+1:]
	}
	return ""
}

// Spool is the message store. It is safe for concurrent use.
type Spool struct {
	db    *pebble.DB
	log   *slog.Logger
	space *space

	memTableSize  uint64
	dir           string
	fileThreshold int

	// Reclaiming space after deliveries, under the reserve (see reclaim).
	removals    atomic.Int64 // entries removed since the last reclaim
	reclaiming  atomic.Bool
	lastReclaim time.Time // touched only by the space goroutine
	reclaimCtx  context.Context
	reclaimStop context.CancelFunc
	reclaimWG   sync.WaitGroup

	mu        sync.Mutex
	remaining map[string]int // message ID → entries not yet removed

	commitObserver atomic.Pointer[CommitObserver]
}

// Open opens or creates the spool in opts.Dir.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.FileThreshold == 0 {
		opts.FileThreshold = 512 << 10
	}
	if opts.SpaceCheckInterval <= 0 {
		opts.SpaceCheckInterval = spaceCheckInterval
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, contentDir), 0o750); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	// The reserve is measured, and the ballast given up if the disk is
	// full, before Pebble opens: opening writes a WAL and a MANIFEST.
	sp, err := newSpace(opts.Dir, opts.MinFree, opts.FreeSpace, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             &pebbleLogger{l: opts.Logger},
		MemTableSize:       min(max(sp.minFree/4, 1<<20), 64<<20),
	}
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s := &Spool{db: db, log: opts.Logger, space: sp, memTableSize: po.MemTableSize, remaining: map[string]int{},
		dir: opts.Dir, fileThreshold: opts.FileThreshold}
	if err := s.buildIndex(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s.reclaimCtx, s.reclaimStop = context.WithCancel(context.Background())
	sp.low = s.reclaim
	go sp.run(opts.SpaceCheckInterval)
	return s, nil
}

// reclaimEvery is the shortest interval between two reclaims.
const reclaimEvery = 5 * time.Second

// reclaim gives back the space of delivered messages when the disk is under
// the reserve. Pebble frees a deleted value's space only once the memtable
// holding the deletion is flushed and the tables holding the value are
// compacted, which a queue of small records may not trigger for a long
// time; so the message records are compacted, in the background, at most
// every reclaimEvery and only after removals. Compacting deleted records
// writes little.
func (s *Spool) reclaim() {
	if time.Since(s.lastReclaim) < reclaimEvery || s.removals.Load() == 0 || s.space.settle() != nil {
		return
	}
	if !s.reclaiming.CompareAndSwap(false, true) {
		return
	}
	s.lastReclaim = time.Now()
	s.removals.Store(0)
	s.reclaimWG.Add(1)
	go func() {
		defer s.reclaimWG.Done()
		defer s.reclaiming.Store(false)
		err := s.db.Compact(s.reclaimCtx, []byte{prefixContent}, []byte{prefixEntry + 1}, false)
		if err != nil && s.reclaimCtx.Err() == nil {
			s.log.Warn("spool: cannot compact delivered messages away yet", "err", err)
		}
		s.space.refresh()
	}()
}

// closeFlushWait bounds how long Close waits for the memtable to be flushed.
const closeFlushWait = 10 * time.Second

// Close flushes and closes the database. The flush only shortens the next
// start (the WAL already holds every write), so it is skipped when the
// disk has no room for it and abandoned after closeFlushWait: a full disk
// never holds up a shutdown.
func (s *Spool) Close() error {
	s.space.close()
	s.reclaimStop()
	s.reclaimWG.Wait()
	if free := s.space.refresh(); free >= s.space.floor+s.memTableSize {
		if done, err := s.db.AsyncFlush(); err == nil {
			select {
			case <-done:
			case <-time.After(closeFlushWait):
				s.log.Warn("spool: flush at close did not finish; the WAL will be replayed at the next start")
			}
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// Put stores m (assigning m.ID if empty) with one entry per recipient due at
// due, and returns after the write is synced to disk. It returns the
// message's metadata and its entries in recipient order. It returns an
// error wrapping ErrNoSpace, having written nothing, when the message would
// leave less than the free-space reserve.
func (s *Spool) Put(m *message.Message, due time.Time) (*Meta, []*Entry, error) {
	size := uint64(m.Size())
	if err := s.space.admit(size); err != nil {
		return nil, nil, fmt.Errorf("spool: put %s: %w", m.ID, err)
	}
	defer s.space.release(size)
	b := s.NewBatch()
	defer b.Close()
	meta, entries, err := b.Put(m, due)
	if err != nil {
		return nil, nil, err
	}
	if err := b.Commit(true); err != nil {
		return nil, nil, err
	}
	return meta, entries, nil
}

// forget drops the bookkeeping of a message whose Put did not commit.
func (s *Spool) forget(id string) {
	s.mu.Lock()
	delete(s.remaining, id)
	s.mu.Unlock()
}

// Update rewrites an entry after an attempt. It does not wait for a sync.
func (s *Spool) Update(e *Entry) error {
	b := s.NewBatch()
	defer b.Close()
	if err := b.Update(e); err != nil {
		return err
	}
	return b.Commit(false)
}

// Remove deletes an entry whose recipient is finished, and its message when
// it was the last. It does not wait for a sync.
func (s *Spool) Remove(e *Entry) error {
	b := s.NewBatch()
	defer b.Close()
	b.Remove(e)
	return b.Commit(false)
}

// Meta returns the metadata of message id.
func (s *Spool) Meta(id string) (*Meta, error) {
	var m Meta
	if err := s.getJSON(metaKey(id), &m); err != nil {
		return nil, fmt.Errorf("spool: meta %s: %w", id, err)
	}
	return &m, nil
}

// Content returns the stored content (header and body) of message id.
func (s *Spool) Content(id string) ([]byte, error) {
	v, closer, err := s.db.Get(contentKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		out, ferr := os.ReadFile(s.contentPath(id))
		if errors.Is(ferr, os.ErrNotExist) {
			return nil, fmt.Errorf("spool: content %s: %w", id, ErrNotFound)
		}
		if ferr != nil {
			return nil, fmt.Errorf("spool: content %s: %w", id, ferr)
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: content %s: %w", id, err)
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// Message returns message id with its metadata and parsed content. The
// envelope has no recipients: those live in the entries.
func (s *Spool) Message(id string) (*message.Message, *Meta, error) {
	meta, err := s.Meta(id)
	if err != nil {
		return nil, nil, err
	}
	content, err := s.Content(id)
	if err != nil {
		return nil, nil, err
	}
	h, body, err := message.Parse(content)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: message %s: %w", id, err)
	}
	m := meta.Message()
	m.Header, m.Body = h, body
	return m, meta, nil
}

// Message returns a message carrying meta's envelope and ingest facts, with
// no recipients, header or body.
func (meta *Meta) Message() *message.Message {
	return &message.Message{
		ID: meta.ID,
		Envelope: message.Envelope{
			Sender: meta.Sender, Ret: meta.Ret, EnvID: meta.EnvID, UTF8: meta.UTF8,
		},
		Tenant: meta.Tenant, AuthUser: meta.AuthUser, ClientIP: meta.ClientIP, Helo: meta.Helo,
		Received: meta.Received, Class: meta.Class, Campaign: meta.Campaign,
		Priority: meta.Priority, Author: meta.Author,
	}
}

// Scan calls fn for every stored message with its remaining entries, in ID
// order, and rebuilds the spool's bookkeeping of remaining entries. It
// deletes messages that have no entries left. Call it once, at start,
// before any other use.
func (s *Spool) Scan(fn func(meta *Meta, entries []*Entry) error) error {
	entries := map[string][]*Entry{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry, 0}, UpperBound: []byte{prefixEntry, 1}})
	if err != nil {
		return fmt.Errorf("spool: scan entries: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		id, idx, ok := parseEntryKey(it.Key())
		if !ok {
			s.log.Error("spool: skipping malformed entry key", "key", fmt.Sprintf("%q", it.Key()))
			continue
		}
		e := &Entry{MsgID: id, Index: idx}
		if err := json.Unmarshal(it.Value(), e); err != nil {
			s.log.Error("spool: skipping unreadable entry", "msg_id", id, "index", idx, "err", err)
			continue
		}
		entries[id] = append(entries[id], e)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("spool: scan entries: %w", err)
	}

	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixMeta, 0}, UpperBound: []byte{prefixMeta, 1}})
	if err != nil {
		return fmt.Errorf("spool: scan messages: %w", err)
	}
	defer it.Close()
	var orphans []string
	known := map[string]bool{} // messages whose content file is kept
	for it.First(); it.Valid(); it.Next() {
		known[string(it.Key()[2:])] = true
		var meta Meta
		if err := json.Unmarshal(it.Value(), &meta); err != nil {
			s.log.Error("spool: skipping unreadable message", "key", string(it.Key()[2:]), "err", err)
			continue
		}
		es := entries[meta.ID]
		delete(entries, meta.ID)
		if len(es) == 0 {
			orphans = append(orphans, meta.ID)
			continue
		}
		s.mu.Lock()
		s.remaining[meta.ID] = len(es)
		s.mu.Unlock()
		if err := fn(&meta, es); err != nil {
			return err
		}
	}
	// Clearing leftovers can wait for the next start when the disk is full.
	if err := s.space.settle(); err != nil {
		s.log.Warn("spool: leftovers of finished messages kept until a start with free space", "err", err)
		return nil
	}
	for id := range entries {
		s.log.Error("spool: entries without a message; removing them", "msg_id", id)
		for _, e := range entries[id] {
			if err := s.db.Delete(entryKey(id, e.Index), pebble.NoSync); err != nil {
				return fmt.Errorf("spool: remove stray entry: %w", err)
			}
		}
	}
	for _, id := range orphans {
		if err := s.deleteMessage(id); err != nil {
			return err
		}
	}
	return s.removeStrayFiles(func(id string) bool { return known[id] })
}

func (s *Spool) deleteMessage(id string) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Delete(tenantKey(s.tenantOf(id), id), nil) // Batch.Delete fails only on a closed batch
	_ = b.Delete(metaKey(id), nil)
	_ = b.Delete(contentKey(id), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("spool: delete %s: %w", id, err)
	}
	s.removeContentFile(id)
	return nil
}

// Batch groups spool writes into one atomic commit, for example a bounced
// recipient's removal together with the DSN it causes.
type Batch struct {
	s *Spool
	b *pebble.Batch
	// added lists messages this batch puts, forgotten if it is closed
	// uncommitted.
	added []string
	// removed lists, once per entry, the messages whose count of pending
	// entries this batch lowered, given back if it is closed uncommitted.
	removed []string
	// files lists content files this batch wrote, removed if it is closed
	// uncommitted; finished lists messages whose content file goes once
	// the batch is committed.
	files, finished []string
	committed       bool
}

// NewBatch starts a batch. Close it after Commit (or to abandon it); a
// Commit refused with ErrNoSpace may be tried again before Close.
func (s *Spool) NewBatch() *Batch {
	return &Batch{s: s, b: s.db.NewBatch()}
}

// Put adds message m with one entry per recipient due at due.
func (b *Batch) Put(m *message.Message, due time.Time) (*Meta, []*Entry, error) {
	if len(m.Recipients) == 0 {
		return nil, nil, fmt.Errorf("spool: message %s has no recipients", m.ID)
	}
	if m.ID == "" {
		m.ID = NewID()
	}
	meta := Meta{
		ID: m.ID, Sender: m.Sender, Ret: m.Ret, EnvID: m.EnvID, UTF8: m.UTF8,
		Tenant: m.Tenant, AuthUser: m.AuthUser, ClientIP: m.ClientIP, Helo: m.Helo,
		Received: m.Received, Class: m.Class, Campaign: m.Campaign, Priority: m.Priority,
		Author: m.Author, Size: m.Size(), Recipients: len(m.Recipients),
	}
	mb, err := json.Marshal(&meta)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: encode meta %s: %w", m.ID, err)
	}
	if meta.Size > b.s.fileThreshold {
		if err := b.s.writeContentFile(m); err != nil {
			return nil, nil, err
		}
		b.files = append(b.files, m.ID)
	} else {
		_ = b.b.Set(contentKey(m.ID), m.Bytes(), nil) // Batch.Set fails only on a closed batch
	}
	_ = b.b.Set(metaKey(m.ID), mb, nil)
	_ = b.b.Set(tenantKey(m.Tenant, m.ID), nil, nil)
	if m.Author != "" {
		if err := b.putBounceRef(m); err != nil {
			return nil, nil, err
		}
	}
	entries := make([]*Entry, len(m.Recipients))
	for i, r := range m.Recipients {
		e := &Entry{MsgID: m.ID, Index: i, Rcpt: r, Due: due}
		if err := b.Update(e); err != nil {
			return nil, nil, err
		}
		entries[i] = e
	}
	b.s.mu.Lock()
	b.s.remaining[m.ID] = len(entries)
	b.s.mu.Unlock()
	b.added = append(b.added, m.ID)
	return &meta, entries, nil
}

// Update rewrites an entry.
func (b *Batch) Update(e *Entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("spool: encode entry %s/%d: %w", e.MsgID, e.Index, err)
	}
	_ = b.b.Set(entryKey(e.MsgID, e.Index), v, nil) // fails only on a closed batch
	return nil
}

// Remove deletes an entry, and its message when no entry remains; it reads
// the message's tenant for the index when it is the last entry, which
// RemoveOf, given the tenant, does not need to.
func (b *Batch) Remove(e *Entry) {
	b.remove(e, "", false)
}

// RemoveOf is Remove for an entry of a message of tenant.
func (b *Batch) RemoveOf(e *Entry, tenant string) {
	b.remove(e, tenant, true)
}

func (b *Batch) remove(e *Entry, tenant string, tenantKnown bool) {
	_ = b.b.Delete(entryKey(e.MsgID, e.Index), nil) // fails only on a closed batch
	b.s.mu.Lock()
	n, tracked := b.s.remaining[e.MsgID]
	last := tracked && n <= 1
	if last {
		delete(b.s.remaining, e.MsgID)
	} else if tracked {
		b.s.remaining[e.MsgID] = n - 1
	}
	if tracked {
		b.removed = append(b.removed, e.MsgID)
	}
	b.s.mu.Unlock()
	if last {
		if !tenantKnown {
			tenant = b.s.tenantOf(e.MsgID)
		}
		_ = b.b.Delete(tenantKey(tenant, e.MsgID), nil)
		_ = b.b.Delete(metaKey(e.MsgID), nil)
		_ = b.b.Delete(contentKey(e.MsgID), nil)
		b.finished = append(b.finished, e.MsgID)
	}
}

// Commit applies the batch atomically; with sync it returns after the data
// is on disk (sharing the fsync with concurrent commits). When the disk is
// under the floor kept for settlements it writes nothing and returns an
// error wrapping ErrNoSpace; the batch may then be committed again.
func (b *Batch) Commit(sync bool) error {
	if err := b.s.space.settle(); err != nil {
		return fmt.Errorf("spool: commit: %w", err)
	}
	start := time.Now()
	if err := b.b.Commit(writeOptions(sync)); err != nil {
		return fmt.Errorf("spool: commit: %w", err)
	}
	b.s.observeCommit(sync, start)
	b.committed = true
	b.s.removals.Add(int64(len(b.removed)))
	for _, id := range b.finished {
		b.s.removeContentFile(id)
	}
	return nil
}

// Close releases the batch. Closing it uncommitted undoes its bookkeeping.
func (b *Batch) Close() {
	if !b.committed {
		for _, id := range b.added {
			b.s.forget(id)
		}
		for _, id := range b.files {
			b.s.removeContentFile(id)
		}
		// The entries stay: count them again, so that a later removal
		// does not take for its last a message with entries left.
		b.s.mu.Lock()
		for _, id := range b.removed {
			b.s.remaining[id]++
		}
		b.s.mu.Unlock()
	}
	_ = b.b.Close() // closing an uncommitted or committed batch cannot fail usefully
}

// Remaining returns how many entries of message id are still pending.
func (s *Spool) Remaining(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining[id]
}

// Messages returns the number of messages with pending entries.
func (s *Spool) Messages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.remaining)
}

func (s *Spool) getJSON(key []byte, v any) error {
	raw, closer, err := s.db.Get(key)
	if err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	defer closer.Close()
	return json.Unmarshal(raw, v)
}

func metaKey(id string) []byte    { return append([]byte{prefixMeta, 0}, id...) }
func contentKey(id string) []byte { return append([]byte{prefixContent, 0}, id...) }

func entryKey(id string, idx int) []byte {
	k := make([]byte, 0, 2+len(id)+5)
	k = append(k, prefixEntry, 0)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(idx))
}

func parseEntryKey(k []byte) (id string, idx int, ok bool) {
	if len(k) < 2+1+5 || k[0] != prefixEntry || k[1] != 0 {
		return "", 0, false
	}
	rest := k[2:]
	sep := len(rest) - 5
	if rest[sep] != 0 {
		return "", 0, false
	}
	return string(rest[:sep]), int(binary.BigEndian.Uint32(rest[sep+1:])), true
}

// pebbleLogEvery is the shortest interval between two logged Pebble errors.
const pebbleLogEvery = 10 * time.Second

// pebbleLogger sends Pebble's errors to slog and keeps its chatter quiet.
// Errors are logged at most once per pebbleLogEvery, with the count of
// those left out: a background flush that fails on a full disk is retried
// at once, and would otherwise log without pause.
type pebbleLogger struct {
	l *slog.Logger

	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (p *pebbleLogger) Infof(string, ...any) {}
func (p *pebbleLogger) Errorf(format string, args ...any) {
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.last) < pebbleLogEvery {
		p.skipped++
		p.mu.Unlock()
		return
	}
	skipped := p.skipped
	p.last, p.skipped = now, 0
	p.mu.Unlock()
	p.l.Error("spool: pebble: "+fmt.Sprintf(format, args...), "similar_errors_not_logged", skipped)
}
func (p *pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("spool: pebble fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
