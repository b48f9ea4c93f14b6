// Package eventtest records events for tests: a Recorder is an event.Sink
// that keeps a copy of everything emitted, safe for concurrent producers.
package eventtest

import (
	"sync"

	"corriere/core/event"
)

// Recorder keeps every event it receives.
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
}

// Emit records a copy of e.
func (r *Recorder) Emit(e *event.Event) {
	r.mu.Lock()
	r.events = append(r.events, *e)
	r.mu.Unlock()
}

// All returns the events so far, in order.
func (r *Recorder) All() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Of returns the events of type t so far, in order.
func (r *Recorder) Of(t event.Type) []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many events of type t concern rcpt ("" for any
// recipient).
func (r *Recorder) Count(t event.Type, rcpt string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i := range r.events {
		if e := &r.events[i]; e.Type == t && (rcpt == "" || e.Recipient == rcpt) {
			n++
		}
	}
	return n
}

// Bus returns a bus whose events r records.
func (r *Recorder) Bus() *event.Bus {
	b := &event.Bus{}
	b.Subscribe(r)
	return b
}
