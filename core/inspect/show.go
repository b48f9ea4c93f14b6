package inspect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/spool"
)

// Policy is what an explanation asks of the policy in force;
// *luart.Engine implements it.
type Policy interface {
	ProviderNamer
	DryRun(ctx context.Context, in luart.DryRunInput) (*luart.DryRun, error)
	Status() luart.Status
}

// Explanation is everything known about one queued message: its envelope
// and header, and for each pending recipient where it is and why.
type Explanation struct {
	ID         string        `json:"id"`
	Sender     string        `json:"sender"`
	Tenant     string        `json:"tenant"`
	AuthUser   string        `json:"auth_user,omitempty"`
	Author     string        `json:"author,omitempty"`
	Class      message.Class `json:"class"`
	Campaign   string        `json:"campaign,omitempty"`
	Received   time.Time     `json:"received"`
	ClientIP   string        `json:"client_ip,omitempty"`
	Size       int           `json:"size"`
	Header     string        `json:"header"`
	Generation uint64        `json:"policy_generation"`
	Recipients []Traced      `json:"recipients"`
}

// Traced is a recipient with the policy's decisions about it.
type Traced struct {
	Recipient
	Trace []Step `json:"trace"`
}

// Step is one decision of the policy: which hook, what it decided, and
// which file defines it.
type Step struct {
	Hook    string `json:"hook"`
	Decided string `json:"decided"`
	Where   string `json:"where"`
}

// Explain describes message id. With a policy, each pending recipient gets
// the decisions of the policy in force, taken again on the spooled message
// as `corriere rules test` takes them: classify, route, shape (with any
// warm-up cap) and, for the last reply, on_response.
func (in *Inspector) Explain(ctx context.Context, id string, pol Policy) (*Explanation, error) {
	meta, err := in.Spool.Meta(id)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	content, err := in.Spool.Content(id)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	entries, err := in.Spool.Entries(id)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	header, _, _ := strings.Cut(string(content), "\r\n\r\n")
	x := &Explanation{
		ID: meta.ID, Sender: meta.Sender, Tenant: meta.Tenant, AuthUser: meta.AuthUser, Author: meta.Author,
		Class: meta.Class, Campaign: meta.Campaign, Received: meta.Received, ClientIP: meta.ClientIP,
		Size: meta.Size, Header: header + "\r\n", Recipients: []Traced{},
	}
	now := in.now()
	var hooks map[string]luart.HookStatus
	if pol != nil {
		st := pol.Status()
		x.Generation = st.Generation
		hooks = map[string]luart.HookStatus{}
		for _, h := range st.Hooks {
			hooks[h.Name] = h
		}
	}
	for _, e := range entries {
		t := Traced{Recipient: in.recipient(meta, e, now)}
		if pol != nil {
			t.Trace = trace(ctx, pol, hooks, meta, e, content)
		}
		x.Recipients = append(x.Recipients, t)
	}
	return x, nil
}

// trace takes one recipient through the policy.
func trace(ctx context.Context, pol Policy, hooks map[string]luart.HookStatus, meta *spool.Meta, e *spool.Entry, content []byte) []Step {
	where := func(hook string) string {
		h, ok := hooks[hook]
		if !ok {
			return ""
		}
		if at, ok := h.OverridesAt[meta.Tenant]; ok {
			return at + " (the tenant's override)"
		}
		return h.Defined
	}
	d, err := pol.DryRun(ctx, luart.DryRunInput{
		Name: meta.ID, Message: content, Sender: meta.Sender, Recipient: e.Rcpt.Addr, Tenant: meta.AuthUser,
		MXHost: e.LastMX, Reply: e.LastReply,
	})
	if err != nil {
		return []Step{{Hook: "policy", Decided: "could not be asked: " + err.Error()}}
	}
	c := d.Classification
	steps := []Step{
		{Hook: "classify", Where: where("classify"), Decided: fmt.Sprintf("tenant %s, class %s, campaign %q, priority %d (queued as class %s)",
			orNone(c.Tenant), c.Class, c.Campaign, c.Priority, meta.Class)},
		{Hook: "route", Where: where("route"), Decided: fmt.Sprintf("provider %s (MX %s), pool %s, source %s",
			orNone(d.Provider), orNone(d.MXHost), orNone(d.Route.Pool), orNone(d.Route.Source))},
		{Hook: "shape", Where: where("shape"), Decided: limits(d)},
	}
	if d.Warmup != nil && d.Warmup.Warming {
		steps = append(steps, Step{Hook: "warm-up", Where: "rules/pools.lua",
			Decided: fmt.Sprintf("source %s is on day %d of %d: at most %d messages per provider today", d.Route.Source, d.Warmup.Day, d.Warmup.Days, d.Warmup.Cap)})
	}
	if d.Verdict != nil {
		v := d.Verdict
		decided := fmt.Sprintf("%s for %q", v.Action, e.LastReply)
		if v.Category != "" {
			decided += ", category " + string(v.Category)
		}
		if v.Delay > 0 {
			decided += ", retry after " + v.Delay.String()
		}
		if v.Scope != "" {
			decided += ", acting on the " + string(v.Scope)
		}
		steps = append(steps, Step{Hook: "on_response", Where: where("on_response"), Decided: decided})
	}
	return steps
}

// limits describes shape's answer.
func limits(d *luart.DryRun) string {
	l := d.Limits
	var parts []string
	if l.MaxConnections > 0 {
		parts = append(parts, fmt.Sprintf("%d connections", l.MaxConnections))
	}
	for _, r := range []struct {
		v    float64
		unit string
	}{{l.PerSecond, "second"}, {l.PerMinute, "minute"}, {l.PerHour, "hour"}, {l.PerDay, "day"}} {
		if r.v > 0 {
			parts = append(parts, fmt.Sprintf("%g per %s", r.v, r.unit))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("no limits for %s from %s", orNone(d.Provider), orNone(d.Route.Source))
	}
	return fmt.Sprintf("%s for %s from %s", strings.Join(parts, ", "), orNone(d.Provider), orNone(d.Route.Source))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
