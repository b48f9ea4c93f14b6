package inspect

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"corriere/core/queue"
)

// Actor acts on queued recipients; *queue.Queue implements it.
type Actor interface {
	Bounce(ids []queue.EntryID, reason string) (queue.ActResult, error)
	Delete(ids []queue.EntryID, reason string) (queue.ActResult, error)
	Retry(ids []queue.EntryID) (queue.ActResult, error)
	Rebind(ids []queue.EntryID, pool string) (queue.ActResult, error)
}

// The actions, named as in the admin API and the CLI.
const (
	ActionBounce = "bounce"
	ActionDelete = "delete"
	ActionRetry  = "retry"
	ActionRebind = "rebind"
)

// ActResponse is the answer of an action: what was selected and what was
// done.
type ActResponse struct {
	Action   string `json:"action"`
	Selected int    `json:"selected"`
	queue.ActResult
}

// ErrNoSelector refuses an action that would select every recipient.
var ErrNoSelector = errors.New("inspect: an action needs at least one selector (tenant, campaign, class, provider, domain, rcpt, source, state or older_than)")

// Empty reports whether f selects every recipient.
func (f Filter) Empty() bool { return f == Filter{Limit: f.Limit} }

// Act applies action to the recipients f selects. An action needs at least
// one selector, so that a forgotten flag does not empty the queue; reason
// is required to bounce (it goes into the DSN) and recorded otherwise;
// pool is the pool a rebind sends them from.
func (in *Inspector) Act(a Actor, action string, f Filter, reason, pool string) (ActResponse, error) {
	res := ActResponse{Action: action}
	if f.Empty() {
		return res, ErrNoSelector
	}
	if action == ActionBounce && reason == "" {
		return res, errors.New("inspect: bounce needs a reason: it is sent to the sender in the DSN")
	}
	if action == ActionRebind && pool == "" {
		return res, errors.New("inspect: rebind needs the pool to send from")
	}
	switch action {
	case ActionBounce, ActionDelete, ActionRetry, ActionRebind:
	default:
		return res, fmt.Errorf("inspect: unknown action %q: want bounce, delete, retry or rebind", action)
	}
	list, err := in.List(f)
	if err != nil {
		return res, err
	}
	ids := make([]queue.EntryID, len(list))
	for i, r := range list {
		ids[i] = queue.EntryID{ID: r.ID, Index: r.Index}
	}
	res.Selected = len(ids)
	switch action {
	case ActionBounce:
		res.ActResult, err = a.Bounce(ids, reason)
	case ActionDelete:
		res.ActResult, err = a.Delete(ids, reason)
	case ActionRetry:
		res.ActResult, err = a.Retry(ids)
	case ActionRebind:
		res.ActResult, err = a.Rebind(ids, pool)
	}
	return res, err
}

// actHandler serves POST /api/recipients/{action}?selectors&reason=&pool=;
// a rebind's pool must be one of the policy's.
func actHandler(in *Inspector, a Actor, pol Policy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		reason, pool := q.Get("reason"), q.Get("pool")
		q.Del("reason")
		q.Del("pool")
		f, err := FilterFromQuery(q)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if pool != "" && pol != nil {
			if pools := pol.Status().Pools; !slices.Contains(pools, pool) {
				writeError(w, http.StatusBadRequest, fmt.Errorf("pool %q is not in rules/pools.lua (pools: %v)", pool, pools))
				return
			}
		}
		res, err := in.Act(a, r.PathValue("action"), f, reason, pool)
		if err != nil {
			code := http.StatusBadRequest
			if res.Selected > 0 {
				code = http.StatusInternalServerError
			}
			writeError(w, code, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// Suspender suspends and resumes deliveries by provider, source IP, tenant
// or campaign; *queue.Queue implements it.
type Suspender interface {
	Suspend(scope queue.Scope, until time.Time, reason string) (int, error)
	Resume(scope queue.Scope) (int, error)
}

// SuspendResponse is the answer of POST /api/suspend and /api/resume.
type SuspendResponse struct {
	queue.Scope
	Until time.Time `json:"until,omitzero"`
	// Count is how many providers, lanes or tenants the action covered.
	Count int `json:"count"`
}

// scopeFromQuery reads the scope of POST /api/suspend and /api/resume.
func scopeFromQuery(q url.Values) queue.Scope {
	return queue.Scope{Provider: q.Get("provider"), Source: q.Get("source"), Tenant: q.Get("tenant"), Campaign: q.Get("campaign")}
}

// suspendHandler serves POST /api/suspend?provider=&source=&tenant=&campaign=&for=&reason=.
func suspendHandler(s Suspender, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d, err := time.ParseDuration(q.Get("for"))
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("for %q: want a positive duration such as 2h", q.Get("for")))
			return
		}
		res := SuspendResponse{Scope: scopeFromQuery(q), Until: now().Add(d)}
		if res.Count, err = s.Suspend(res.Scope, res.Until, q.Get("reason")); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// resumeHandler serves POST /api/resume?provider=&source=&tenant=&campaign=.
func resumeHandler(s Suspender) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := SuspendResponse{Scope: scopeFromQuery(r.URL.Query())}
		var err error
		if res.Count, err = s.Resume(res.Scope); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}
