package inspect

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"corriere/core/message"
	"corriere/core/queue"
	"corriere/core/spool"
)

// States of a queued recipient.
const (
	StateReady     = "ready"
	StateDeferred  = "deferred"
	StateScheduled = "scheduled"
	StateInFlight  = queue.LiveInFlight
	StateSuspended = queue.LiveSuspended
	StateRemoving  = queue.LiveRemoving
)

// Filter selects recipients: every field that is set must match.
type Filter struct {
	// Tenant, Campaign and Class match the message's classification.
	Tenant, Campaign string
	Class            message.Class
	// Provider matches the provider of the last attempt's MX host.
	Provider string
	// Domain and Rcpt match the recipient, case-insensitively.
	Domain, Rcpt string
	// Source matches the source IP of the last attempt.
	Source string
	// State matches the recipient's state (see the State constants).
	State string
	// OlderThan takes messages received at least this long ago.
	OlderThan time.Duration
	// Limit stops the listing after this many recipients; 0 is no limit.
	Limit int
}

// Validate reports a filter that cannot match as the operator meant.
func (f *Filter) Validate() error {
	switch f.State {
	case "", StateReady, StateDeferred, StateScheduled, StateInFlight, StateSuspended, StateRemoving:
	default:
		return fmt.Errorf("inspect: state %q: want ready, deferred, scheduled, inflight or suspended", f.State)
	}
	if f.Class != "" {
		if _, ok := message.ParseClass(string(f.Class)); !ok {
			return fmt.Errorf("inspect: class %q is not a class", f.Class)
		}
	}
	if f.OlderThan < 0 || f.Limit < 0 {
		return errors.New("inspect: older_than and limit cannot be negative")
	}
	return nil
}

// Recipient is one queued recipient as a listing shows it.
type Recipient struct {
	ID          string        `json:"id"`
	Index       int           `json:"index"`
	Address     string        `json:"rcpt"`
	Sender      string        `json:"sender"`
	Tenant      string        `json:"tenant"`
	Class       message.Class `json:"class"`
	Campaign    string        `json:"campaign,omitempty"`
	Provider    string        `json:"provider,omitempty"`
	State       string        `json:"state"`
	Attempts    int           `json:"attempts"`
	NextAttempt time.Time     `json:"next_attempt"`
	LastReply   string        `json:"last_reply,omitempty"`
	LastSource  string        `json:"last_source,omitempty"`
	LastMX      string        `json:"last_mx,omitempty"`
	Received    time.Time     `json:"received"`
}

// ProviderNamer names the provider that operates an MX host;
// *luart.Engine implements it.
type ProviderNamer interface {
	Provider(mxHost string) string
}

// Live is what the running queue knows of a recipient that the spool does
// not: whether it is in a transaction now, or held by a suspension;
// *queue.Queue implements it.
type Live interface {
	// LiveState returns StateInFlight or StateSuspended, or "" when the
	// spool's view (ready, deferred, scheduled) stands. provider and
	// source are those of the recipient's last attempt.
	LiveState(id string, index int, provider, source string) string
}

// Inspector lists and explains queued recipients.
type Inspector struct {
	// Spool holds the queue. Required.
	Spool *spool.Spool
	// Providers names providers; nil leaves them empty.
	Providers ProviderNamer
	// Live adds the running queue's states; nil when no node runs.
	Live Live
	// Now is the clock. The default value is time.Now.
	Now func() time.Time
}

func (in *Inspector) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

// List returns the recipients matching f, oldest message first.
func (in *Inspector) List(f Filter) ([]Recipient, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	now := in.now()
	sel := spool.Selector{Tenant: f.Tenant, Campaign: f.Campaign, Class: f.Class}
	if f.OlderThan > 0 {
		sel.Before = spool.IDBefore(now.Add(-f.OlderThan))
	}
	if sel.Tenant == "" && sel.Campaign == "" && sel.Class == "" {
		return in.listByEntry(f, sel.Before, now)
	}
	out := []Recipient{}
	var failed error
	err := in.Spool.Select(sel, func(meta *spool.Meta) bool {
		entries, err := in.Spool.Entries(meta.ID)
		if err != nil {
			failed = err
			return false
		}
		for _, e := range entries {
			r := in.recipient(meta, e, now)
			if !f.matches(&r) {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) >= f.Limit {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, fmt.Errorf("inspect: list: %w", err)
	}
	return out, nil
}

// recipient describes entry e of the message meta.
func (in *Inspector) recipient(meta *spool.Meta, e *spool.Entry, now time.Time) Recipient {
	r := Recipient{
		ID: meta.ID, Index: e.Index, Address: e.Rcpt.Addr, Sender: meta.Sender, Tenant: meta.Tenant,
		Class: meta.Class, Campaign: meta.Campaign, Attempts: e.Attempts, NextAttempt: e.Due,
		LastReply: e.LastReply, LastSource: e.LastSource, LastMX: e.LastMX, Received: meta.Received,
	}
	if in.Providers != nil && e.LastMX != "" {
		r.Provider = in.Providers.Provider(e.LastMX)
	}
	switch {
	case !e.Due.After(now):
		r.State = StateReady
	case e.Attempts > 0:
		r.State = StateDeferred
	default:
		r.State = StateScheduled
	}
	if in.Live != nil {
		if s := in.Live.LiveState(meta.ID, e.Index, r.Provider, e.LastSource); s != "" {
			r.State = s
		}
	}
	return r
}

// matches applies the recipient-level fields of f.
func (f *Filter) matches(r *Recipient) bool {
	switch {
	case f.Provider != "" && r.Provider != f.Provider:
		return false
	case f.Rcpt != "" && !strings.EqualFold(r.Address, f.Rcpt):
		return false
	case f.Domain != "" && !strings.EqualFold(domainOf(r.Address), f.Domain):
		return false
	case f.Source != "" && r.LastSource != f.Source:
		return false
	case f.State != "" && r.State != f.State:
		return false
	}
	return true
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// listByEntry answers a filter on recipients alone with one pass over the
// entries, reading a message's metadata only for the entries that match
// what the entry says (recipient, domain, source, state before Live).
func (in *Inspector) listByEntry(f Filter, before string, now time.Time) ([]Recipient, error) {
	out := []Recipient{}
	var meta *spool.Meta
	var failed error
	err := in.Spool.ScanEntries(before, func(e *spool.Entry) bool {
		if f.Rcpt != "" && !strings.EqualFold(e.Rcpt.Addr, f.Rcpt) ||
			f.Domain != "" && !strings.EqualFold(domainOf(e.Rcpt.Addr), f.Domain) ||
			f.Source != "" && e.LastSource != f.Source {
			return true
		}
		if meta == nil || meta.ID != e.MsgID {
			m, err := in.Spool.Meta(e.MsgID)
			if err != nil {
				if errors.Is(err, spool.ErrNotFound) {
					return true // finished meanwhile
				}
				failed = err
				return false
			}
			meta = m
		}
		r := in.recipient(meta, e, now)
		if !f.matches(&r) {
			return true
		}
		out = append(out, r)
		return f.Limit == 0 || len(out) < f.Limit
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, fmt.Errorf("inspect: list: %w", err)
	}
	return out, nil
}
