package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/outbox"
	"corriere/core/plugin"
	"corriere/core/tenant"
)

func init() {
	plugin.Register("webhook", func() any { return &Tenants{} })
	plugin.Register("eventsink", func() any { return &Sink{} })
}

// OutboxOptions are the settings both plugins give their outbox, besides
// its directory, name and secrets; tests shorten them. The zero value
// takes outbox's defaults.
var OutboxOptions outbox.Options

// base is what both plugins share: an outbox in the spool directory and an
// event sink that writes to it.
type base struct {
	name string
	dir  string
	log  *slog.Logger
	box  atomic.Pointer[outbox.Outbox]
}

func (b *base) provision(name string, ctx *extension.Context) {
	b.name, b.log = name, ctx.Logger
	if b.log == nil {
		b.log = slog.Default()
	}
	b.dir = filepath.Join(ctx.DataDir, "outbox", name)
}

func (b *base) start(secrets outbox.Secrets) error {
	if err := os.MkdirAll(b.dir, 0o750); err != nil {
		return fmt.Errorf("%s: outbox directory: %w", b.name, err)
	}
	opts := OutboxOptions
	opts.Dir, opts.Name, opts.Secrets, opts.Logger = b.dir, b.name, secrets, b.log
	// The secrets are policy: nothing is sent before it is loaded.
	opts.Held = true
	box, err := outbox.Open(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	b.box.Store(box)
	return nil
}

// add writes e for eps to the outbox; a failure is logged: the event bus
// has no one to return it to.
func (b *base) add(eps []outbox.Endpoint, e *event.Event) {
	box := b.box.Load()
	if box == nil || len(eps) == 0 {
		return
	}
	payload, err := json.Marshal(e)
	if err == nil {
		err = box.Add(eps, payload)
	}
	if err != nil {
		b.log.Error("event not written to the outbox", "type", e.Type, "msg_id", e.MsgID, "tenant", e.Tenant, "err", err)
	}
}

// Outbox returns the plugin's outbox, nil before Start.
func (b *base) Outbox() *outbox.Outbox { return b.box.Load() }

// release lets the outbox send, once the policy that holds the secrets is
// in force.
func (b *base) release() {
	if box := b.box.Load(); box != nil {
		box.Release()
	}
}

// Close closes the outbox; events not delivered wait for the next start.
func (b *base) Close() error {
	if box := b.box.Swap(nil); box != nil {
		return box.Close()
	}
	return nil
}

// Describe implements prometheus.Collector. It describes nothing, which
// makes the plugin an unchecked collector: both plugins report the same
// metrics, told apart by their outbox label, and a checked collector
// cannot share its descriptions with another.
func (b *base) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (b *base) Collect(ch chan<- prometheus.Metric) {
	if box := b.box.Load(); box != nil {
		box.Collect(ch)
	}
}

// Tenants is the "webhook" plugin: each tenant's webhooks.
type Tenants struct {
	base
	tenants tenant.Directory
}

// Provision implements extension.Provisioner.
func (p *Tenants) Provision(ctx *extension.Context) error {
	p.provision("webhook", ctx)
	p.tenants = ctx.Tenants
	return nil
}

// Start implements extension.Starter: it opens the outbox, whose workers
// resume the events left by the last run.
func (p *Tenants) Start(context.Context) error {
	if p.tenants == nil {
		return errors.New("webhook: no tenant directory")
	}
	return p.start(p.secret)
}

// Prepare implements extension.Preparer. The webhooks are read with the
// tenant files by the policy engine; the first generation in force lets
// the outbox send.
func (p *Tenants) Prepare(string) (func(), error) {
	return p.release, nil
}

// secret finds the secret of a webhook in the tenant's file in force.
func (p *Tenants) secret(ep outbox.Endpoint) (string, bool) {
	t, ok := p.tenants.Lookup(ep.Tenant)
	if !ok {
		return "", false
	}
	for _, w := range t.Webhooks {
		if w.URL == ep.URL {
			return w.Secret, true
		}
	}
	return "", false
}

// Emit implements event.Sink: it stores the event for every webhook of its
// tenant that asks for its type.
func (p *Tenants) Emit(e *event.Event) {
	if e.Tenant == "" || !slices.Contains(tenant.WebhookEvents, string(e.Type)) || p.tenants == nil {
		return
	}
	t, ok := p.tenants.Lookup(e.Tenant)
	if !ok || len(t.Webhooks) == 0 {
		return
	}
	var eps []outbox.Endpoint
	for i := range t.Webhooks {
		if t.Webhooks[i].Wants(string(e.Type)) {
			eps = append(eps, outbox.Endpoint{Tenant: t.Name, URL: t.Webhooks[i].URL})
		}
	}
	p.add(eps, e)
}

var (
	_ extension.Provisioner = (*Tenants)(nil)
	_ extension.Starter     = (*Tenants)(nil)
	_ extension.Preparer    = (*Tenants)(nil)
	_ extension.AdminRoutes = (*Tenants)(nil)
	_ event.Sink            = (*Tenants)(nil)
	_ prometheus.Collector  = (*Tenants)(nil)
)
