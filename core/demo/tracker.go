package demo

import (
	"strings"
	"sync"
	"time"

	"corriere/core/event"
)

// rcptState is what the events say about one workload recipient.
type rcptState struct {
	msgID    string
	provider string
	class    string
	// status is the latest delivery event: "" before the first attempt,
	// then deferred, and finally delivered, bounced, expired or suppressed.
	status     event.Type
	deferrals  int
	greylisted bool // a deferral was greylisting
	lastReply  string
	// lateBounce is the category of a bounce that came back through the
	// bounce listener after the delivery.
	lateBounce event.Category
}

// noticeState is what the events say about one DSN Corriere sent.
type noticeState struct {
	rcpt      string
	provider  string
	status    event.Type
	deferrals int
	lastReply string
}

// laneChange is a suspension or resumption of a lane.
type laneChange struct {
	at       time.Time
	typ      event.Type
	provider string
	source   string
	until    time.Time
	reason   string
}

// tracker follows the node's events: it is an event.Sink.
type tracker struct {
	wl *workload

	mu sync.Mutex
	// rcpts holds the workload recipients that have had an event.
	rcpts map[string]*rcptState
	// notices holds events of messages that are not the workload's: the
	// DSNs, by spool id.
	notices map[string]*noticeState
	// dsnOf maps a DSN's spool id to the id of the message it reports on.
	dsnOf map[string]string
	// dsns counts the DSNs queued per reported message.
	dsns     map[string]int
	received int
	rejected map[string]int // ingest refusals by reason
	lanes    []laneChange
	// lateMail says how long after a recipient's delivery its provider may
	// still send a bounce or a complaint report about it; lateUntil is
	// when the last such mail is due.
	lateMail  func(rcpt string) time.Duration
	lateUntil time.Time
}

func newTracker(wl *workload, lateMail func(rcpt string) time.Duration) *tracker {
	return &tracker{
		wl: wl, lateMail: lateMail, rcpts: map[string]*rcptState{}, notices: map[string]*noticeState{},
		dsnOf: map[string]string{}, dsns: map[string]int{}, rejected: map[string]int{},
	}
}

// dsnPrefix starts the Reason of a dsn event, before the DSN's spool id.
const dsnPrefix = "delivery status notification queued as "

// Emit records one event.
func (t *tracker) Emit(e *event.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Type {
	case event.Received:
		t.received++
	case event.Rejected:
		t.rejected[e.Reason]++
	case event.DSNQueued:
		t.dsns[e.MsgID]++
		if rest, ok := strings.CutPrefix(e.Reason, dsnPrefix); ok {
			id, _, _ := strings.Cut(rest, " ")
			t.dsnOf[id] = e.MsgID
		}
	case event.Suspended, event.Resumed:
		t.lanes = append(t.lanes, laneChange{at: e.Time, typ: e.Type, provider: e.Provider, source: e.Source, until: e.Until, reason: e.Reply + e.Reason})
	case event.Delivered, event.Deferred, event.Bounced, event.Expired, event.Suppressed:
		rcpt := strings.ToLower(e.Recipient)
		if _, ours := t.wl.byRcpt[rcpt]; !ours {
			t.notice(e)
			return
		}
		if d := t.lateMail(rcpt); e.Type == event.Delivered && d > 0 && e.Time.Add(d).After(t.lateUntil) {
			t.lateUntil = e.Time.Add(d)
		}
		s := t.rcpts[rcpt]
		if s == nil {
			s = &rcptState{}
			t.rcpts[rcpt] = s
		}
		if e.Type == event.Bounced && s.status == event.Delivered {
			// Accepted, then bounced by the provider: the bounce listener
			// took it; the recipient stays delivered.
			s.lateBounce = e.Category
			return
		}
		s.msgID, s.class, s.status = e.MsgID, e.Class, e.Type
		if e.Provider != "" {
			s.provider = e.Provider
		}
		if e.Reply != "" {
			s.lastReply = e.Reply
		}
		if e.Type == event.Deferred {
			s.deferrals++
			s.greylisted = s.greylisted || isGreylisting(e.Reply)
		}
	}
}

func (t *tracker) notice(e *event.Event) {
	n := t.notices[e.MsgID]
	if n == nil {
		n = &noticeState{rcpt: e.Recipient}
		t.notices[e.MsgID] = n
	}
	n.status = e.Type
	if e.Provider != "" {
		n.provider = e.Provider
	}
	if e.Reply != "" {
		n.lastReply = e.Reply
	}
	if e.Type == event.Deferred {
		n.deferrals++
	}
}

// isGreylisting recognises a greylisting deferral by its wording.
func isGreylisting(reply string) bool {
	r := strings.ToLower(reply)
	return strings.Contains(r, "greylist") || strings.Contains(r, "graylist")
}

// view is a consistent copy of the tracker's state.
type view struct {
	rcpts     map[string]rcptState
	notices   map[string]noticeState
	dsnOf     map[string]string
	dsns      map[string]int
	received  int
	rejected  map[string]int
	lanes     []laneChange
	lateUntil time.Time
}

// view copies the state.
func (t *tracker) view() view {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := view{
		rcpts: make(map[string]rcptState, len(t.rcpts)), notices: make(map[string]noticeState, len(t.notices)),
		dsnOf: make(map[string]string, len(t.dsnOf)), dsns: make(map[string]int, len(t.dsns)),
		received: t.received, rejected: make(map[string]int, len(t.rejected)),
		lanes: append([]laneChange(nil), t.lanes...), lateUntil: t.lateUntil,
	}
	for k, s := range t.rcpts {
		v.rcpts[k] = *s
	}
	for k, n := range t.notices {
		v.notices[k] = *n
	}
	for k, d := range t.dsnOf {
		v.dsnOf[k] = d
	}
	for k, n := range t.dsns {
		v.dsns[k] = n
	}
	for k, n := range t.rejected {
		v.rejected[k] = n
	}
	return v
}
