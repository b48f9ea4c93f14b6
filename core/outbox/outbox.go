package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Headers of every request.
const (
	// TimestampHeader carries the Unix time of the request, in seconds;
	// receivers refuse old ones to refuse replays.
	TimestampHeader = "X-Corriere-Timestamp"
	// SignatureHeader carries "v1=" and the hexadecimal HMAC-SHA256 of
	// "<timestamp>.<body>" under the endpoint's secret.
	SignatureHeader = "X-Corriere-Signature"
)

// Sign returns the value of SignatureHeader for body sent at timestamp.
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Endpoint names where events go: a tenant's URL ("" is the operator's).
type Endpoint struct {
	Tenant string `json:"tenant,omitempty"`
	URL    string `json:"url"`
}

// key is the endpoint's part of the database keys.
func (e Endpoint) key() string {
	sum := sha256.Sum256([]byte(e.Tenant + "\x00" + e.URL))
	return hex.EncodeToString(sum[:8])
}

// Secrets finds the secret of an endpoint at each request, so that a
// changed secret applies at once; false means the endpoint is no longer
// configured, and its events go to the dead letters.
type Secrets func(e Endpoint) (secret string, ok bool)

// Options configure an Outbox.
type Options struct {
	// Dir is the outbox's database directory. Required.
	Dir string
	// Secrets finds the endpoints' secrets. Required.
	Secrets Secrets
	// Name labels the metrics ("webhook", "eventsink"). Required.
	Name string
	// Client posts the requests. The default value is an http.Client
	// without redirects.
	Client *http.Client
	// Timeout bounds each request. The default value is 10 seconds.
	Timeout time.Duration
	// BatchSize is the most events per request. The default value is 100.
	BatchSize int
	// MinBackoff is the wait after a first failure; it doubles with each
	// further one. The default value is 1 second.
	MinBackoff time.Duration
	// MaxBackoff caps the wait. The default value is 5 minutes.
	MaxBackoff time.Duration
	// MaxAge is how long an event is retried before it goes to the
	// dead-letter list. The default value is 24 hours.
	MaxAge time.Duration
	// MaxPending is the most events one endpoint may have waiting; more go
	// to the dead-letter list at once. The default value is 1,000,000.
	MaxPending int
	// DeadLetterTTL is how long dead letters are kept; older ones are
	// deleted at Open and every hour. The default value is 7 days.
	DeadLetterTTL time.Duration
	// Held makes the workers wait for Release before their first request:
	// the endpoints' secrets may come with a policy that is not loaded yet
	// when the outbox opens, and an endpoint without a secret has its
	// events given up. The default value is false.
	Held bool
	// Logger logs failures. The default value is slog.Default().
	Logger *slog.Logger
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
}

// EnsureDefaults fills unset fields with their documented defaults.
func (o *Options) EnsureDefaults() {
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.MaxAge == 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.MaxPending == 0 {
		o.MaxPending = 1_000_000
	}
	if o.DeadLetterTTL == 0 {
		o.DeadLetterTTL = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports missing or impossible settings.
func (o *Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("outbox: no directory")
	case o.Secrets == nil:
		return errors.New("outbox: no secrets")
	case o.Name == "":
		return errors.New("outbox: no name")
	case o.Timeout < 0 || o.BatchSize < 0 || o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff || o.MaxAge < 0 || o.MaxPending < 0 || o.DeadLetterTTL < 0:
		return errors.New("outbox: negative limit, or MaxBackoff under MinBackoff")
	}
	return nil
}

// Event is one event for one endpoint.
type Event struct {
	// ID is the event's idempotency key: the same on every retry.
	ID string `json:"id"`
	// Payload is the event, a JSON object.
	Payload json.RawMessage `json:"payload"`
}

// record is what the database holds for an event.
type record struct {
	Endpoint Endpoint        `json:"endpoint"`
	ID       string          `json:"id"`
	Created  time.Time       `json:"created"`
	Payload  json.RawMessage `json:"payload"`
	// Reason, in a dead letter, says why it was given up.
	Reason string `json:"reason,omitempty"`
}

// Key prefixes: pending events, then dead letters; then the endpoint's
// key, a NUL, and a 16-byte big-endian sequence number.
const (
	prefixPending = 'q'
	prefixDead    = 'd'
)

func eventKey(prefix byte, ep string, seq uint64) []byte {
	k := make([]byte, 0, 2+len(ep)+1+8)
	k = append(k, prefix, 0)
	k = append(k, ep...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func endpointPrefix(prefix byte, ep string) []byte {
	return append(append([]byte{prefix, 0}, ep...), 0)
}

// Outbox is a persistent outbox with its delivery workers.
type Outbox struct {
	opts Options
	log  *slog.Logger
	db   *pebble.DB
	seq  atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// released is closed by Release, or at Open without Options.Held.
	released    chan struct{}
	releaseOnce sync.Once

	mu      sync.Mutex
	workers map[string]*worker
	closed  bool
}

// Open opens (or creates) the outbox in opts.Dir and starts a worker for
// every endpoint with events left.
func Open(opts Options) (*Outbox, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	db, err := pebble.Open(opts.Dir, &pebble.Options{Logger: pebbleLogger{opts.Logger}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", opts.Dir, err)
	}
	o := &Outbox{opts: opts, log: opts.Logger, db: db, workers: map[string]*worker{}, released: make(chan struct{})}
	if !opts.Held {
		o.Release()
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	o.seq.Store(uint64(opts.Now().UnixNano()))
	if err := o.recover(); err != nil {
		db.Close()
		return nil, err
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.pruneDeadLetters()
	}()
	return o, nil
}

// pruneDeadLetters deletes the dead letters older than DeadLetterTTL now
// and every hour until Close, so that a long-dead endpoint does not fill
// the disk.
func (o *Outbox) pruneDeadLetters() {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := o.prune(o.opts.Now().Add(-o.opts.DeadLetterTTL)); err != nil {
			o.log.Error("outbox: prune dead letters", "outbox", o.opts.Name, "err", err)
		}
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune deletes the dead letters created before cutoff.
func (o *Outbox) prune(cutoff time.Time) error {
	p := []byte{prefixDead, 0}
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	b := o.db.NewBatch()
	defer b.Close()
	for it.First(); it.Valid(); it.Next() {
		var r record
		if err := json.Unmarshal(it.Value(), &r); err != nil || r.Created.Before(cutoff) {
			_ = b.Delete(it.Key(), nil) // fails only on a closed batch
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// recover starts the workers of the endpoints with events left, and makes
// sure new sequence numbers follow every stored one.
func (o *Outbox) recover() error {
	it, err := o.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("outbox: recover: %w", err)
	}
	defer it.Close()
	pending := map[string]*worker{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 8 {
			continue
		}
		if seq := binary.BigEndian.Uint64(k[len(k)-8:]); seq >= o.seq.Load() {
			o.seq.Store(seq + 1)
		}
		if k[0] != prefixPending {
			continue
		}
		var r record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return fmt.Errorf("outbox: recover: %w", err)
		}
		ep := r.Endpoint.key()
		w := pending[ep]
		if w == nil {
			w = o.newWorker(r.Endpoint)
			pending[ep] = w
		}
		w.stats.pending.Add(1)
		w.noteOldest(r.Created)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("outbox: recover: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for ep, w := range pending {
		o.workers[ep] = w
		o.start(w)
		o.log.Info("outbox: events left from the last run", "outbox", o.opts.Name, "tenant", w.ep.Tenant, "url", w.ep.URL, "events", w.stats.pending.Load())
	}
	return nil
}

// Add stores one event for each endpoint and returns once they are on
// disk; the endpoints' workers then send them. payload is the event as a
// JSON object; each endpoint's copy gets an id of its own, its
// idempotency key.
func (o *Outbox) Add(eps []Endpoint, payload []byte) error {
	if len(eps) == 0 {
		return nil
	}
	now := o.opts.Now()
	b := o.db.NewBatch()
	defer b.Close()
	workers := make([]*worker, len(eps))
	dead := make([]bool, len(eps))
	for i, ep := range eps {
		w := o.worker(ep)
		if w == nil {
			return errors.New("outbox: closed")
		}
		workers[i] = w
		seq := o.seq.Add(1)
		r := record{Endpoint: ep, ID: fmt.Sprintf("%s-%016x", w.key, seq), Created: now, Payload: payload}
		prefix := byte(prefixPending)
		if int(w.stats.pending.Load()) >= o.opts.MaxPending {
			prefix, r.Reason, dead[i] = prefixDead, "the endpoint has too many events waiting", true
		}
		v, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("outbox: encode event: %w", err)
		}
		_ = b.Set(eventKey(prefix, w.key, seq), v, nil) // fails only on a closed batch
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("outbox: add: %w", err)
	}
	for i, w := range workers {
		if dead[i] {
			w.stats.dead.Add(1)
			continue
		}
		w.stats.pending.Add(1)
		w.noteOldest(now)
		w.wake()
	}
	return nil
}

// worker returns the worker of ep, started on first use; nil once the
// outbox is closed.
func (o *Outbox) worker(ep Endpoint) *worker {
	k := ep.key()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	w := o.workers[k]
	if w == nil {
		w = o.newWorker(ep)
		o.workers[k] = w
		o.start(w)
	}
	return w
}

func (o *Outbox) start(w *worker) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		w.run(o.ctx)
	}()
}

// Release lets the workers of an outbox opened with Options.Held send. It
// may be called more than once.
func (o *Outbox) Release() {
	o.releaseOnce.Do(func() { close(o.released) })
}

// Close stops the workers, waiting for the requests in flight, and closes
// the database. Events not delivered stay for the next Open.
func (o *Outbox) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("outbox: close: %w", err)
	}
	return nil
}

// DeadLetters returns the dead letters of ep, oldest first, with why each
// was given up.
func (o *Outbox) DeadLetters(ep Endpoint) ([]DeadLetter, error) {
	p := endpointPrefix(prefixDead, ep.key())
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("outbox: dead letters: %w", err)
	}
	defer it.Close()
	var out []DeadLetter
	for it.First(); it.Valid(); it.Next() {
		var r record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("outbox: dead letters: %w", err)
		}
		out = append(out, DeadLetter{Event: Event{ID: r.ID, Payload: r.Payload}, Endpoint: r.Endpoint, Created: r.Created, Reason: r.Reason})
	}
	return out, it.Error()
}

// DeadLetter is an event given up.
type DeadLetter struct {
	Event
	Endpoint Endpoint  `json:"endpoint"`
	Created  time.Time `json:"created"`
	Reason   string    `json:"reason"`
}

// AllDeadLetters returns the dead letters of every endpoint of tenant (of
// every endpoint when tenant is "*"), at most limit of them.
func (o *Outbox) AllDeadLetters(tenant string, limit int) ([]DeadLetter, error) {
	p := []byte{prefixDead, 0}
	it, err := o.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("outbox: dead letters: %w", err)
	}
	defer it.Close()
	out := []DeadLetter{}
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		var r record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("outbox: dead letters: %w", err)
		}
		if tenant == "*" || r.Endpoint.Tenant == tenant {
			out = append(out, DeadLetter{Event: Event{ID: r.ID, Payload: r.Payload}, Endpoint: r.Endpoint, Created: r.Created, Reason: r.Reason})
		}
	}
	return out, it.Error()
}

// Pending returns how many events wait for ep.
func (o *Outbox) Pending(ep Endpoint) int {
	o.mu.Lock()
	w := o.workers[ep.key()]
	o.mu.Unlock()
	if w == nil {
		return 0
	}
	return int(w.stats.pending.Load())
}

// post sends one batch to ep and reports whether the endpoint took it.
func (o *Outbox) post(ctx context.Context, ep Endpoint, secret string, events []Event) error {
	body, err := json.Marshal(struct {
		Events []json.RawMessage `json:"events"`
	}{Events: payloads(events)})
	if err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := o.opts.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Corriere-Webhook/1")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(secret, ts, body))
	resp, err := o.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// payloads returns each event's payload with its id, as sent.
func payloads(events []Event) []json.RawMessage {
	out := make([]json.RawMessage, len(events))
	for i, e := range events {
		// The payload is an object: its id goes in front.
		p := bytes.TrimSpace(e.Payload)
		id, _ := json.Marshal(e.ID)
		b := append([]byte(`{"id":`), id...)
		if len(p) > 2 {
			b = append(b, ',')
			b = append(b, p[1:]...)
		} else {
			b = append(b, '}')
		}
		out[i] = b
	}
	return out
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

// pebbleLogger sends Pebble's errors to slog and keeps its chatter quiet.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("outbox: pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("outbox: pebble fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
