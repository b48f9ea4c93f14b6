package event

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/testlib"
)

// recorder is a sink that keeps what it receives, under a name.
type recorder struct {
	name string
	mu   *sync.Mutex
	log  *[]string // "name:msg_id@time" of every event, all recorders together
}

func (r recorder) Emit(e *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, fmt.Sprintf("%s:%s@%s", r.name, e.MsgID, e.Time.Format("15:04")))
}

func TestBus(t *testing.T) {
	t.Parallel()
	stamp := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	own := time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		// run subscribes the sinks it is given and emits on b.
		run  func(b *Bus, a, z Sink)
		want []string
	}{
		{
			name: "every sink gets every event, in emission then subscription order",
			run: func(b *Bus, a, z Sink) {
				b.Subscribe(a)
				b.Subscribe(z)
				b.Emit(&Event{Type: Received, MsgID: "m1"})
				b.Emit(&Event{Type: Delivered, MsgID: "m2"})
			},
			want: []string{"a:m1@09:00", "z:m1@09:00", "a:m2@09:00", "z:m2@09:00"},
		},
		{
			name: "an event's own time is kept",
			run: func(b *Bus, a, _ Sink) {
				b.Subscribe(a)
				b.Emit(&Event{Type: Deferred, MsgID: "m1", Time: own})
			},
			want: []string{"a:m1@08:30"},
		},
		{
			name: "a sink gets only what is emitted after it subscribed",
			run: func(b *Bus, a, z Sink) {
				b.Subscribe(a)
				b.Emit(&Event{Type: Received, MsgID: "early"})
				b.Subscribe(z)
				b.Emit(&Event{Type: Received, MsgID: "late"})
			},
			want: []string{"a:early@09:00", "a:late@09:00", "z:late@09:00"},
		},
		{
			name: "without sinks, nothing happens",
			run: func(b *Bus, _, _ Sink) {
				b.Emit(&Event{Type: Received, MsgID: "m1"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			b := &Bus{Now: func() time.Time { return stamp }}
			tt.run(b, recorder{"a", &mu, &got}, recorder{"z", &mu, &got})
			if !slices.Equal(got, tt.want) {
				t.Errorf("sinks received %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBusStampsWithTheWallClockByDefault(t *testing.T) {
	t.Parallel()
	var b Bus
	e := &Event{Type: Received}
	before := time.Now()
	b.Emit(e)
	if e.Time.Before(before) || e.Time.After(time.Now()) {
		t.Errorf("stamped %v, want a time during Emit", e.Time)
	}
}

func TestNilBusDiscards(t *testing.T) {
	t.Parallel()
	var b *Bus
	e := &Event{Type: Received}
	b.Emit(e) // must not panic
	if !e.Time.IsZero() {
		t.Errorf("a nil bus stamped the event: %v", e.Time)
	}
}

// TestBusSubscribeWhileEmitting subscribes sinks while other goroutines
// emit (run it with -race): every event reaches every sink subscribed
// before the event was emitted, and none is delivered twice.
func TestBusSubscribeWhileEmitting(t *testing.T) {
	t.Parallel()
	const emitters, perEmitter, sinks = 4, 200, 10
	var b Bus
	first := &countingSink{}
	b.Subscribe(first)
	var wg sync.WaitGroup
	for range emitters {
		wg.Go(func() {
			for range perEmitter {
				b.Emit(&Event{Type: Delivered})
			}
		})
	}
	late := make([]*countingSink, sinks)
	for i := range late {
		late[i] = &countingSink{}
		b.Subscribe(late[i])
	}
	wg.Wait()
	if got := first.n(); got != emitters*perEmitter {
		t.Errorf("the first sink got %d events, want %d", got, emitters*perEmitter)
	}
	for i, s := range late {
		if got := s.n(); got > emitters*perEmitter {
			t.Errorf("late sink %d got %d events, more than the %d emitted", i, got, emitters*perEmitter)
		}
	}
}

type countingSink struct {
	mu    sync.Mutex
	count int
}

func (c *countingSink) Emit(*Event) { c.mu.Lock(); c.count++; c.mu.Unlock() }

func (c *countingSink) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.count }

// TestLogWritesJSONLines checks the event log's format, which operators'
// tools read: one JSON object per line with the documented names, zero
// fields left out, written by the background flush without a Flush call,
// and nothing written after Close.
func TestLogWritesJSONLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	events := []*Event{
		{Time: at, Type: Received, MsgID: "m1", Sender: "app@acme.example", Tenant: "acme", Size: 1200, Recipients: 2},
		{Time: at, Type: Deferred, MsgID: "m1", Recipient: "a@dest.example", Attempt: 1, Reply: "451 4.7.1 try later",
			Category: "greylisted", Until: at.Add(time.Minute)},
		{Time: at, Type: Bounced, MsgID: "m1", Recipient: "b@dest.example", Hard: true, Category: "userunknown"},
	}
	want := []string{
		`{"time":"2026-12-03T09:00:00Z","type":"received","msg_id":"m1","sender":"app@acme.example","tenant":"acme","size":1200,"rcpts":2}`,
		`{"time":"2026-12-03T09:00:00Z","type":"deferred","msg_id":"m1","rcpt":"a@dest.example","attempt":1,"reply":"451 4.7.1 try later","category":"greylisted","until":"2026-12-03T09:01:00Z"}`,
		`{"time":"2026-12-03T09:00:00Z","type":"bounced","msg_id":"m1","rcpt":"b@dest.example","category":"userunknown","hard":true}`,
	}
	for _, e := range events {
		l.Emit(e)
	}
	testlib.WaitFor(t, "the background flush to write every event", func() bool {
		return len(readLines(t, path)) == len(events)
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Emit(&Event{Time: at, Type: Received, MsgID: "after-close"})
	got := readLines(t, path)
	if !slices.Equal(got, want) {
		t.Errorf("event log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, line := range got {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.MsgID != events[i].MsgID || !e.Time.Equal(at) {
			t.Errorf("line %d does not read back: %+v, %v", i+1, e, err)
		}
	}
}

// readLines returns the lines of the file at path.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
