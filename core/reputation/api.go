package reputation

import (
	"encoding/json"
	"net/http"
	"time"

	"corriere/core/queue"
)

// Lane is one delivery lane's state as reputation shows it: its
// suspension with the reason, its slow-down and its source's warm-up.
type Lane struct {
	Source   string `json:"source"`
	Provider string `json:"provider"`
	// Queued counts the recipients waiting in the lane, InFlight those
	// in transactions.
	Queued   int `json:"queued"`
	InFlight int `json:"in_flight"`
	// RateFactor is the slow-down multiplier (1 is full speed).
	RateFactor float64 `json:"rate_factor"`
	// SuspendedUntil and SuspendReason are set while the lane or its
	// provider is suspended.
	SuspendedUntil time.Time `json:"suspended_until,omitzero"`
	SuspendReason  string    `json:"suspend_reason,omitempty"`
	// Warmup is the source's warm-up day, today's cap and what went out
	// against it, while it warms up.
	Warmup *queue.WarmupStatus `json:"warmup,omitempty"`
}

// Report is the answer of GET /api/reputation and of
// `corriere reputation --json`.
type Report struct {
	Generated   time.Time    `json:"generated"`
	Rows        []Row        `json:"rows"`
	Suspensions []Suspension `json:"suspensions"`
	Lanes       []Lane       `json:"lanes"`
}

// Queue is what a report needs of the queue: its lanes.
type Queue interface {
	Status() queue.Status
}

// Report gathers the rows f selects, the suspensions in force, and the
// lanes of q (nil: none) of f's source IP and provider.
func (t *Tracker) Report(f Filter, q Queue) Report {
	r := Report{Generated: t.opts.Now(), Rows: t.Rows(f), Suspensions: t.Suspensions(), Lanes: []Lane{}}
	if q == nil || f.Tenant != "" {
		return r
	}
	for _, l := range q.Status().Lanes {
		if (f.IP != "" && l.Source != f.IP) || (f.Provider != "" && l.Provider != f.Provider) {
			continue
		}
		queued := 0
		for _, n := range l.Queued {
			queued += n
		}
		ln := Lane{Source: l.Source, Provider: l.Provider, Queued: queued, InFlight: l.InFlight,
			RateFactor: l.RateFactor, SuspendedUntil: l.SuspendedUntil, Warmup: l.Warmup}
		if !l.SuspendedUntil.IsZero() {
			ln.SuspendReason = t.Reason(l.Provider, l.Source)
		}
		r.Lanes = append(r.Lanes, ln)
	}
	return r
}

// AdminHandlers are the admin API's endpoints of reputation:
// GET /api/reputation?ip=&provider=&tenant=&hourly=1.
func AdminHandlers(t *Tracker, q Queue) map[string]http.Handler {
	return map[string]http.Handler{
		"GET /api/reputation": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			qs := r.URL.Query()
			f := Filter{IP: qs.Get("ip"), Provider: qs.Get("provider"), Tenant: qs.Get("tenant"), Hourly: qs.Get("hourly") != ""}
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(t.Report(f, q)) // the client is gone if this fails
		}),
	}
}
