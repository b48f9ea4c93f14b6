package luart

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"corriere/core/event"
	"corriere/core/message"
)

// Quarantine keeps one bad script, tenant or message from starving the
// others. Every call that runs out of a budget (time or memory) is a
// strike against its key; a key with Options.QuarantineStrikes strikes
// within Options.QuarantineWindow is quarantined for
// Options.QuarantineTime: its calls still run, so its innocent messages
// still pass, but under the short Options.QuarantineTimeout, and a call
// that fails again answers only when its normal time budget would have
// ended, without holding a Lua state or the CPU meanwhile. A looping
// offender thus costs a few milliseconds of CPU per attempt instead of the
// whole budget, at the same pace as before.

// quarantineKey is what a budget failure is charged to: the hook, the
// message's tenant and, at ingest, the client (its authenticated user, or
// its IP address). Delivery-side hooks have no client: their key is the
// hook and the tenant.
type quarantineKey struct {
	hook   hookID
	tenant string
	client string
}

// ingestKey is the key of an ingest hook call for m.
func ingestKey(h hookID, m *message.Message) quarantineKey {
	client := m.AuthUser
	if client == "" {
		client = m.ClientIP
	}
	return quarantineKey{hook: h, tenant: m.Tenant, client: client}
}

// quarantinedKey marks the context of a call of a quarantined key.
type quarantinedKey struct{}

// withQuarantine marks ctx when quarantined is set.
func withQuarantine(ctx context.Context, quarantined bool) context.Context {
	if !quarantined {
		return ctx
	}
	return context.WithValue(ctx, quarantinedKey{}, true)
}

// maxOffenders bounds the keys remembered; past it, keys that are not
// quarantined and have no recent strike are forgotten.
const maxOffenders = 10000

// offender is the record of one key.
type offender struct {
	strikes []time.Time // within the window, oldest first
	since   time.Time   // start of the quarantine, zero when free
	until   time.Time   // end of the quarantine
}

// quarantine holds the offenders of an engine.
type quarantine struct {
	mu      sync.Mutex
	active  atomic.Int32 // quarantined keys, for the fast path
	m       map[quarantineKey]*offender
	entered atomic.Uint64
}

// check reports whether k is quarantined, releasing it (with an event and
// a log line) when its time is over.
func (e *Engine) quarantined(k quarantineKey) bool {
	q := &e.quarantine
	if q.active.Load() == 0 {
		return false
	}
	q.mu.Lock()
	o := q.m[k]
	if o == nil || o.since.IsZero() {
		q.mu.Unlock()
		return false
	}
	now := e.now()
	if now.Before(o.until) {
		q.mu.Unlock()
		return true
	}
	since := o.since
	o.since, o.until, o.strikes = time.Time{}, time.Time{}, o.strikes[:0]
	q.active.Add(-1)
	q.mu.Unlock()
	e.log.Info("luart: hook released from quarantine", k.attrs("quarantined_for", now.Sub(since).Round(time.Second).String())...)
	e.emitQuarantine(k, event.HookReleased, fmt.Sprintf("hook %s released from quarantine", hookNames[k.hook]), time.Time{})
	return false
}

// strike charges a budget failure to k and quarantines k when it has
// Options.QuarantineStrikes strikes within Options.QuarantineWindow. A
// failure of a key in quarantine extends it.
func (e *Engine) strike(k quarantineKey) {
	q := &e.quarantine
	opts := &e.opts
	now := e.now()
	q.mu.Lock()
	if q.m == nil {
		q.m = map[quarantineKey]*offender{}
	}
	o := q.m[k]
	if o == nil {
		if len(q.m) >= maxOffenders {
			q.forget(now.Add(-opts.QuarantineWindow))
		}
		o = &offender{}
		q.m[k] = o
	}
	if !o.since.IsZero() {
		o.until = now.Add(opts.QuarantineTime)
		q.mu.Unlock()
		return
	}
	cut := 0
	for cut < len(o.strikes) && o.strikes[cut].Before(now.Add(-opts.QuarantineWindow)) {
		cut++
	}
	o.strikes = append(o.strikes[cut:], now)
	if len(o.strikes) < opts.QuarantineStrikes {
		q.mu.Unlock()
		return
	}
	o.since, o.until = now, now.Add(opts.QuarantineTime)
	q.active.Add(1)
	q.entered.Add(1)
	q.mu.Unlock()
	e.log.Warn("luart: hook quarantined: it keeps running out of its budget; it now runs under the quarantine budget",
		k.attrs("strikes", opts.QuarantineStrikes, "window", opts.QuarantineWindow.String(),
			"until", o.until.Format(time.RFC3339), "quarantine_timeout", opts.QuarantineTimeout.String())...)
	e.emitQuarantine(k, event.HookQuarantined, fmt.Sprintf("hook %s quarantined after %d budget failures in %v",
		hookNames[k.hook], opts.QuarantineStrikes, opts.QuarantineWindow), o.until)
}

// forget drops the keys that are free and have no strike after cut.
// Called with q.mu held.
func (q *quarantine) forget(cut time.Time) {
	for k, o := range q.m {
		if o.since.IsZero() && (len(o.strikes) == 0 || o.strikes[len(o.strikes)-1].Before(cut)) {
			delete(q.m, k)
		}
	}
}

func (k quarantineKey) attrs(extra ...any) []any {
	attrs := []any{"hook", hookNames[k.hook], "tenant", k.tenant}
	if k.client != "" {
		attrs = append(attrs, "client", k.client)
	}
	return append(attrs, extra...)
}

func (e *Engine) emitQuarantine(k quarantineKey, category event.Category, reason string, until time.Time) {
	if k.client != "" {
		reason += " for client " + k.client
	}
	e.opts.Events.Emit(&event.Event{Type: event.PolicyLoad, Category: category, Tenant: k.tenant,
		Reason: reason, Until: until})
}

// tarpit waits, after a quarantined call failed, until the normal time
// budget of a call started at start would have ended: the offender keeps
// its pace, but holds no Lua state and no CPU while it waits.
func (e *Engine) tarpit(ctx context.Context, start time.Time) {
	wait := e.opts.CallTimeout - time.Since(start)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Quarantine describes one quarantined key, for Status.
type Quarantine struct {
	// Hook is the hook's Lua name.
	Hook string `json:"hook"`
	// Tenant is the message's tenant ("" for none).
	Tenant string `json:"tenant,omitempty"`
	// Client is the authenticated user or IP address of the submitting
	// client, for ingest hooks; "" for delivery-side hooks.
	Client string `json:"client,omitempty"`
	// Since and Until bound the quarantine; a new failure extends Until.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// quarantines lists the keys in quarantine now, sorted.
func (e *Engine) quarantines() []Quarantine {
	q := &e.quarantine
	if q.active.Load() == 0 {
		return nil
	}
	now := e.now()
	var out []Quarantine
	q.mu.Lock()
	for k, o := range q.m {
		if !o.since.IsZero() && now.Before(o.until) {
			out = append(out, Quarantine{Hook: hookNames[k.hook], Tenant: k.tenant, Client: k.client, Since: o.since, Until: o.until})
		}
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Hook != b.Hook {
			return a.Hook < b.Hook
		}
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		return a.Client < b.Client
	})
	return out
}
