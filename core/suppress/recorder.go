package suppress

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"corriere/core/event"
)

// RecorderOptions configure NewRecorder.
type RecorderOptions struct {
	// QueueSize bounds the additions waiting to be written; beyond it an
	// addition is dropped, logged and counted (the next bounce adds the
	// address again). The default value is 10000.
	QueueSize int
	// Logger logs additions and failures. The default value is
	// slog.Default().
	Logger *slog.Logger
}

// Recorder is an event.Sink that adds addresses to the list: the recipient
// of an event.Bounced the policy judged hard (Event.Hard, from on_response
// or on_bounce; the recorder never judges a category itself), and
// the recipient of an event.Complained (category from the event, or
// event.CategoryFeedback), each for the event's tenant. An address already suppressed keeps its entry.
//
// Emit only queues: a single worker writes, so events are never slowed by
// the disk, and a crash may lose what is queued. Close drains the queue.
// The bounce listener, which must not answer 250 before a suppression is
// on disk, adds through List.AddIfAbsent directly as well (the recorder
// then finds the entry there and keeps it).
type Recorder struct {
	list  *List
	log   *slog.Logger
	queue chan Entry
	done  chan struct{}

	mu     sync.RWMutex // guards closed against Emit's send
	closed bool

	added, lost atomic.Int64
}

// NewRecorder starts a recorder writing to l. opts may be nil.
func NewRecorder(l *List, opts *RecorderOptions) *Recorder {
	var o RecorderOptions
	if opts != nil {
		o = *opts
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Recorder{list: l, log: o.Logger, queue: make(chan Entry, o.QueueSize), done: make(chan struct{})}
	go r.run()
	return r
}

// Emit implements event.Sink.
func (r *Recorder) Emit(ev *event.Event) {
	if ev.Recipient == "" {
		return
	}
	var e Entry
	switch {
	case ev.Type == event.Bounced && ev.Hard:
		e = Entry{Category: ev.Category, Source: SourceBounce, Reason: ev.Reply}
		if e.Reason == "" {
			e.Reason = ev.Reason
		}
	case ev.Type == event.Complained:
		e = Entry{Category: ev.Category, Source: SourceComplaint, Reason: ev.Reason}
		if e.Category == "" {
			e.Category = event.CategoryFeedback
		}
	default:
		return
	}
	e.Tenant, e.Address, e.Added, e.MsgID = ev.Tenant, ev.Recipient, ev.Time, ev.MsgID
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.queue <- e:
	default:
		r.lost.Add(1)
		r.log.Warn("suppression queue full: address not added", "msg_id", e.MsgID, "rcpt", e.Address, "tenant", e.Tenant, "category", e.Category)
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	for e := range r.queue {
		added, err := r.list.AddIfAbsent(e)
		switch {
		case err != nil:
			r.lost.Add(1)
			r.log.Error("cannot add to the suppression list", "msg_id", e.MsgID, "rcpt", e.Address, "tenant", e.Tenant, "err", err)
		case added:
			r.added.Add(1)
			r.log.Info("address suppressed", "msg_id", e.MsgID, "rcpt", e.Address, "tenant", e.Tenant,
				"category", e.Category, "source", e.Source)
		}
	}
}

// Added returns how many addresses the recorder added.
func (r *Recorder) Added() int64 { return r.added.Load() }

// Lost returns how many additions were lost to a full queue or a storage
// error.
func (r *Recorder) Lost() int64 { return r.lost.Load() }

// Close stops accepting events and returns once every queued addition is
// written. Call it before closing the spool. It is safe to call more than
// once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}

var _ event.Sink = (*Recorder)(nil)
