package reputation

import (
	"sync"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/spool"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func openTracker(t *testing.T, dir string, c *clock) (*Tracker, *spool.Spool) {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Open(sp, Options{Now: c.Now, FlushInterval: time.Hour})
	if err != nil {
		sp.Close()
		t.Fatal(err)
	}
	return tr, sp
}

// find returns the row of (dim, name, provider), or fails.
func find(t *testing.T, rows []Row, dim Dimension, name, provider string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Dimension == dim && r.Name == name && r.Provider == provider {
			return r
		}
	}
	t.Fatalf("no row %s %q at %q in %+v", dim, name, provider, rows)
	return Row{}
}

func TestTrackerCountsWindowsAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := &clock{now: now}
	tr, sp := openTracker(t, dir, c)
	emit := func(ago time.Duration, e event.Event) {
		e.Time = now.Add(-ago)
		tr.Emit(&e)
	}
	gmail := func(typ event.Type, cat event.Category, src string) event.Event {
		return event.Event{Type: typ, Category: cat, Source: src, Provider: "gmail", MX: "mx.gmail.test", Tenant: "shop", Class: "newsletter"}
	}
	emit(time.Minute, gmail(event.Delivered, "", "10.0.0.1"))
	emit(2*time.Minute, gmail(event.Deferred, event.CategoryTooManyConn, "10.0.0.1"))
	emit(3*time.Minute, gmail(event.Bounced, event.CategoryUserUnknown, "10.0.0.1"))
	emit(3*time.Hour, gmail(event.Delivered, "", "10.0.0.2"))
	emit(3*24*time.Hour, gmail(event.Delivered, "", "10.0.0.1"))
	emit(8*24*time.Hour, gmail(event.Delivered, "", "10.0.0.1")) // beyond the week
	// Not attempts: a warm-up postponement and a deferral before any MX.
	emit(time.Minute, event.Event{Type: event.Deferred, Category: event.CategoryWarmup, Source: "10.0.0.1", Provider: "gmail", Tenant: "shop", Class: "newsletter"})
	// Counted as bounced, not as sent: an expiry and a complaint.
	emit(time.Minute, event.Event{Type: event.Expired, Provider: "gmail", Tenant: "shop", Class: "newsletter"})
	emit(time.Minute, event.Event{Type: event.Complained, Provider: "gmail", Tenant: "shop", Class: "newsletter"})
	emit(time.Minute, event.Event{Type: event.Opened, Provider: "gmail", Source: "10.0.0.1", Tenant: "shop", Class: "newsletter"})
	emit(time.Minute, event.Event{Type: event.Opened, Category: event.MachineOpen, Provider: "gmail", Source: "10.0.0.1", Tenant: "shop", Class: "newsletter"})
	emit(time.Minute, event.Event{Type: event.Clicked, Category: event.ScannerClick, Provider: "gmail", Source: "10.0.0.1", Tenant: "shop", Class: "newsletter"})
	emit(time.Minute, event.Event{Type: event.Received, Tenant: "shop"}) // not reputation

	check := func(rows []Row) {
		t.Helper()
		tests := []struct {
			name         string
			row          Row
			hour, day, w Counts
		}{
			{"ip at gmail", find(t, rows, ByIP, "10.0.0.1", "gmail"),
				Counts{Sent: 3, Delivered: 1, Deferred: 1, Bounced: 1, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1}, Opened: 1, MachineOpened: 1, ScannerClicked: 1},
				Counts{Sent: 3, Delivered: 1, Deferred: 1, Bounced: 1, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1}, Opened: 1, MachineOpened: 1, ScannerClicked: 1},
				Counts{Sent: 4, Delivered: 2, Deferred: 1, Bounced: 1, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1}, Opened: 1, MachineOpened: 1, ScannerClicked: 1}},
			{"provider", find(t, rows, ByProvider, "gmail", "gmail"),
				Counts{Sent: 3, Delivered: 1, Deferred: 1, Bounced: 2, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1, event.CategoryExpired: 1}, Complained: 1, Opened: 1, MachineOpened: 1, ScannerClicked: 1},
				Counts{Sent: 4, Delivered: 2, Deferred: 1, Bounced: 2, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1, event.CategoryExpired: 1}, Complained: 1, Opened: 1, MachineOpened: 1, ScannerClicked: 1},
				Counts{Sent: 5, Delivered: 3, Deferred: 1, Bounced: 2, BouncedBy: map[event.Category]int64{event.CategoryUserUnknown: 1, event.CategoryExpired: 1}, Complained: 1, Opened: 1, MachineOpened: 1, ScannerClicked: 1}},
		}
		for _, tt := range tests {
			for _, w := range []struct {
				label     string
				got, want Counts
			}{{"1h", tt.row.Hour.Counts, tt.hour}, {"24h", tt.row.Day.Counts, tt.day}, {"7d", tt.row.Week.Counts, tt.w}} {
				if !equal(w.got, w.want) {
					t.Errorf("%s %s = %+v, want %+v", tt.name, w.label, w.got, w.want)
				}
			}
		}
		tenant := find(t, rows, ByTenant, "shop", "")
		if got := tenant.Day.Rates.Complaint; got != 0.5 {
			t.Errorf("tenant complaint rate over 24h = %v, want 0.5 (1 of 2 delivered)", got)
		}
	}
	check(tr.Rows(Filter{}))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	sp.Close()

	tr, sp = openTracker(t, dir, c)
	defer sp.Close()
	defer tr.Close()
	check(tr.Rows(Filter{}))

	// A week later every bucket has left the windows.
	c.set(now.Add(7 * 24 * time.Hour))
	if rows := tr.Rows(Filter{Provider: "gmail"}); len(rows) != 0 {
		t.Errorf("a week later: %d rows, want none", len(rows))
	}
}

func equal(a, b Counts) bool {
	if len(a.BouncedBy) != len(b.BouncedBy) {
		return false
	}
	for k, v := range a.BouncedBy {
		if b.BouncedBy[k] != v {
			return false
		}
	}
	return a.Sent == b.Sent && a.Delivered == b.Delivered && a.Deferred == b.Deferred &&
		a.Bounced == b.Bounced && a.Complained == b.Complained && a.Opened == b.Opened && a.Clicked == b.Clicked &&
		a.MachineOpened == b.MachineOpened && a.ScannerClicked == b.ScannerClicked
}

func TestFilter(t *testing.T) {
	c := &clock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	tr, sp := openTracker(t, t.TempDir(), c)
	defer sp.Close()
	defer tr.Close()
	for _, e := range []event.Event{
		{Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", MX: "mx", Tenant: "shop", Class: "newsletter"},
		{Type: event.Delivered, Source: "10.0.0.2", Provider: "outlook", MX: "mx", Tenant: "clinic", Class: "transactional"},
	} {
		tr.Emit(&e)
	}
	tests := []struct {
		f    Filter
		want int
	}{
		{Filter{}, 14},
		{Filter{Provider: "gmail"}, 4},
		{Filter{IP: "10.0.0.1"}, 2},
		{Filter{IP: "10.0.0.1", Provider: "outlook"}, 0},
		{Filter{Tenant: "clinic", Provider: "outlook"}, 1},
		{Filter{Tenant: "clinic", IP: "10.0.0.2"}, 0},
	}
	for _, tt := range tests {
		if got := tr.Rows(tt.f); len(got) != tt.want {
			t.Errorf("Rows(%+v) = %d rows, want %d: %+v", tt.f, len(got), tt.want, got)
		}
	}
}

func TestSuspensionReasons(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := &clock{now: now}
	tr, sp := openTracker(t, t.TempDir(), c)
	defer sp.Close()
	defer tr.Close()
	tr.Emit(&event.Event{Type: event.Suspended, Provider: "gmail", Source: "10.0.0.1", Until: now.Add(time.Minute), Reason: "421 4.7.28 rate limited"})
	tr.Emit(&event.Event{Type: event.Suspended, Provider: "outlook", Until: now.Add(time.Hour), Reason: "operator: maintenance"})
	tr.Emit(&event.Event{Type: event.Suspended, Provider: "yahoo", Until: now.Add(time.Hour), Reason: "gone"})
	tr.Emit(&event.Event{Type: event.Resumed, Provider: "yahoo"})

	if got := tr.Reason("gmail", "10.0.0.1"); got != "421 4.7.28 rate limited" {
		t.Errorf("lane reason = %q", got)
	}
	if got := tr.Reason("outlook", "10.0.0.9"); got != "operator: maintenance" {
		t.Errorf("provider reason for a lane = %q", got)
	}
	if got := len(tr.Suspensions()); got != 2 {
		t.Errorf("%d suspensions, want 2 (yahoo's resumed)", got)
	}
	c.set(now.Add(2 * time.Minute))
	if got := tr.Reason("gmail", "10.0.0.1"); got != "" {
		t.Errorf("ended suspension still has reason %q", got)
	}
	if s := tr.Suspensions(); len(s) != 1 || s[0].Provider != "outlook" {
		t.Errorf("suspensions after two minutes = %+v, want outlook's", s)
	}
}

// TestReputationForLua: the policy's view of one row picks the window
// that covers the duration asked for.
func TestReputationForLua(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	c := &clock{now: now}
	tr, sp := openTracker(t, t.TempDir(), c)
	defer sp.Close()
	defer tr.Close()
	for _, ago := range []time.Duration{time.Minute, 3 * time.Hour, 3 * 24 * time.Hour} {
		tr.Emit(&event.Event{Time: now.Add(-ago), Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", MX: "mx", Tenant: "shop"})
	}
	tests := []struct {
		kind, name, provider string
		window               time.Duration
		want                 int64
	}{
		{"ip", "10.0.0.1", "gmail", 5 * time.Minute, 1},
		{"ip", "10.0.0.1", "gmail", 30 * time.Second, 1}, // the bucket 30 s ago began at 11:55
		{"ip", "10.0.0.1", "gmail", 2 * time.Hour, 2},
		{"ip", "10.0.0.1", "", 7 * 24 * time.Hour, 3},
		{"tenant", "shop", "gmail", 24 * time.Hour, 2},
		{"provider", "gmail", "", 7 * 24 * time.Hour, 3},
		{"ip", "10.0.0.2", "gmail", time.Hour, 0},
	}
	for _, tt := range tests {
		if got := tr.Reputation(tt.kind, tt.name, tt.provider, tt.window); got.Delivered != tt.want || got.Sent != tt.want {
			t.Errorf("Reputation(%s, %s, %s, %v) = %+v, want %d delivered", tt.kind, tt.name, tt.provider, tt.window, got, tt.want)
		}
	}
}

// TestRate: attempts per minute over the current 5-minute bucket and the
// two before it.
func TestRate(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 5, 0, 0, time.UTC) // 10 minutes into the three buckets
	c := &clock{now: now}
	tr, sp := openTracker(t, t.TempDir(), c)
	defer sp.Close()
	defer tr.Close()
	for _, ago := range []time.Duration{time.Second, 4 * time.Minute, 9 * time.Minute, 9 * time.Minute, 11 * time.Minute} {
		tr.Emit(&event.Event{Time: now.Add(-ago), Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", MX: "mx"})
	}
	if got := tr.Rate(ByIP, "10.0.0.1", "gmail"); got != 0.4 {
		t.Errorf("Rate = %v, want 0.4 (4 attempts in 10 minutes; the one 11 minutes ago is older)", got)
	}
	if got := tr.Rate(ByIP, "10.0.0.2", "gmail"); got != 0 {
		t.Errorf("Rate of an unknown row = %v", got)
	}
}
