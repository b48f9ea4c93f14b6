package reputation

import (
	"sort"
	"time"

	"corriere/core/event"
	"corriere/core/policy"
)

// Window is a row's counts over one window, with their rates.
type Window struct {
	Counts
	Rates Rates `json:"rates"`
}

// Point is one hour of a row's history, for the status page's charts.
type Point struct {
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Deferred  int64 `json:"deferred"`
	Bounced   int64 `json:"bounced"`
}

// Row is the reputation of one (dimension, name, provider): what a source
// IP, a tenant or a class sent to a provider, or to every provider when
// Provider is "" (ByProvider rows always name their provider).
type Row struct {
	Dimension Dimension `json:"dimension"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	Hour      Window    `json:"1h"`
	Day       Window    `json:"24h"`
	Week      Window    `json:"7d"`
	// Hourly is the last 24 hours, oldest first, the current hour last;
	// only when the Filter asks for it.
	Hourly []Point `json:"hourly,omitempty"`
}

// Filter selects rows. Empty fields select everything; IP and Tenant each
// select rows of their own dimension, so giving both selects nothing.
type Filter struct {
	IP       string
	Provider string
	Tenant   string
	// Hourly asks for each row's hourly history.
	Hourly bool
}

// match reports whether f selects k.
func (f Filter) match(k key) bool {
	if f.IP != "" && (k.dim != ByIP || k.name != f.IP) {
		return false
	}
	if f.Tenant != "" && (k.dim != ByTenant || k.name != f.Tenant) {
		return false
	}
	return f.Provider == "" || k.provider == f.Provider
}

// Rows returns the rows f selects, sorted by dimension, name and provider.
func (t *Tracker) Rows(f Filter) []Row {
	now := t.opts.Now()
	fineNow, hourNow := now.UnixNano()/int64(fineBucket), now.UnixNano()/int64(hourBucket)
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := []Row{}
	for k, s := range t.rows {
		if !f.match(k) {
			continue
		}
		var hour, day, week Counts
		for b, c := range s.fine {
			if b > fineNow-fineBuckets && b <= fineNow {
				hour.add(c)
			}
		}
		for b, c := range s.hourly {
			if b > hourNow-weekBuckets && b <= hourNow {
				week.add(c)
				if b > hourNow-dayBuckets {
					day.add(c)
				}
			}
		}
		if week.isZero() && hour.isZero() {
			continue
		}
		r := Row{Dimension: k.dim, Name: k.name, Provider: k.provider,
			Hour: window(hour), Day: window(day), Week: window(week)}
		if f.Hourly {
			r.Hourly = make([]Point, dayBuckets)
			for i := range r.Hourly {
				if c, ok := s.hourly[hourNow-int64(dayBuckets-1-i)]; ok {
					r.Hourly[i] = Point{Sent: c.Sent, Delivered: c.Delivered, Deferred: c.Deferred, Bounced: c.Bounced}
				}
			}
		}
		rows = append(rows, r)
	}
	sortRows(rows)
	return rows
}

func window(c Counts) Window {
	return Window{Counts: c.clone(), Rates: c.rates()}
}

// Scope names what a suspension holds back: a provider, a (provider,
// source IP) lane, or a tenant's mail (a campaign of it).
type Scope struct {
	Provider string `json:"provider,omitempty"`
	Source   string `json:"source,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Campaign string `json:"campaign,omitempty"`
}

// Suspension is one suspension in force.
type Suspension struct {
	Scope
	// Since is when it was set or last extended, Until when it ends.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Reason is why: the provider's reply the policy judged, or the
	// operator's words ("operator: ...").
	Reason string `json:"reason"`
}

// followSuspension records a suspended event and forgets the suspension
// of a resumed one.
func (t *Tracker) followSuspension(e *event.Event) {
	s := Scope{Provider: e.Provider, Source: e.Source, Tenant: e.Tenant, Campaign: e.Campaign}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Type == event.Resumed {
		delete(t.suspensions, s)
		return
	}
	t.suspensions[s] = Suspension{Scope: s, Since: e.Time, Until: e.Until, Reason: e.Reason}
}

// Suspensions returns the suspensions in force, the longest first.
func (t *Tracker) Suspensions() []Suspension {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []Suspension{}
	for k, s := range t.suspensions {
		if !s.Until.After(now) {
			delete(t.suspensions, k)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Until.Equal(out[j].Until) {
			return out[i].Until.After(out[j].Until)
		}
		a, b := out[i].Scope, out[j].Scope
		return a.Provider+"\x00"+a.Source+"\x00"+a.Tenant+"\x00"+a.Campaign < b.Provider+"\x00"+b.Source+"\x00"+b.Tenant+"\x00"+b.Campaign
	})
	return out
}

// Reason returns the reason of the suspension of a lane: its own, or its
// provider's, whichever ends last; "" when neither is suspended.
func (t *Tracker) Reason(provider, source string) string {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	lane, lok := t.suspensions[Scope{Provider: provider, Source: source}]
	prov, pok := t.suspensions[Scope{Provider: provider}]
	lok = lok && lane.Until.After(now)
	pok = pok && prov.Until.After(now)
	switch {
	case lok && (!pok || !prov.Until.After(lane.Until)):
		return lane.Reason
	case pok:
		return prov.Reason
	}
	return ""
}

var _ policy.Reputation = (*Tracker)(nil)

// Reputation implements policy.Reputation for the Lua policy: the counts
// of one row over window: up to an hour, the 5-minute buckets it overlaps
// (the oldest counted whole); beyond, 24 hours or 7 days.
func (t *Tracker) Reputation(kind, name, provider string, window time.Duration) policy.ReputationCounts {
	k := key{dim: Dimension(kind), name: name, provider: provider}
	if k.dim == ByProvider {
		k.provider = name
	}
	now := t.opts.Now()
	var c Counts
	t.mu.Lock()
	if s, ok := t.rows[k]; ok {
		if window <= time.Hour {
			// The 5-minute buckets that overlap window: the oldest is
			// counted whole, as the windows of Rows are.
			cur := now.UnixNano() / int64(fineBucket)
			oldest := max(cur-fineBuckets+1, now.Add(-window).UnixNano()/int64(fineBucket))
			for b, bc := range s.fine {
				if b >= oldest && b <= cur {
					c.add(bc)
				}
			}
		} else {
			n := int64(dayBuckets)
			if window > 24*time.Hour {
				n = weekBuckets
			}
			cur := now.UnixNano() / int64(hourBucket)
			for b, bc := range s.hourly {
				if b > cur-n && b <= cur {
					c.add(bc)
				}
			}
		}
	}
	t.mu.Unlock()
	return policy.ReputationCounts{Sent: c.Sent, Delivered: c.Delivered, Deferred: c.Deferred, Bounced: c.Bounced,
		Complained: c.Complained, Opened: c.Opened, Clicked: c.Clicked, MachineOpened: c.MachineOpened, ScannerClicked: c.ScannerClicked}
}

// rateBuckets is how many 5-minute buckets Rate reads: the current one
// and the two before it, 10 to 15 minutes.
const rateBuckets = 3

// Rate returns how many attempts a row made per minute lately: over the
// current 5-minute bucket and the two before it.
func (t *Tracker) Rate(kind Dimension, name, provider string) float64 {
	now := t.opts.Now()
	cur := now.UnixNano() / int64(fineBucket)
	since := time.Unix(0, (cur-rateBuckets+1)*int64(fineBucket))
	var sent int64
	t.mu.Lock()
	if s, ok := t.rows[key{dim: kind, name: name, provider: provider}]; ok {
		for b, c := range s.fine {
			if b > cur-rateBuckets && b <= cur {
				sent += c.Sent
			}
		}
	}
	t.mu.Unlock()
	return float64(sent) / now.Sub(since).Minutes()
}
