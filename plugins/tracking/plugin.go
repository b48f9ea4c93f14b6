package tracking

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/message"
	"corriere/core/plugin"
)

func init() {
	plugin.Register("tracking", func() any { return new(Plugin) })
}

// KeyFile is the name of the signing key's file in the spool directory.
const KeyFile = "tracking.key"

// Plugin rewrites links for tracking at ingest and serves the tracked
// URLs. It tracks nothing until the policy engine commits a
// rules/tracking.lua that names tenants, and rewrites nothing without a
// listener (its "listen" setting, --tracking-listen).
type Plugin struct {
	log    *slog.Logger
	events *event.Bus
	listen string
	signer signer
	// now is the clock; time.Now unless a test sets it.
	now func() time.Time

	rules atomic.Pointer[Rules]

	ln  net.Listener
	srv *http.Server

	deliveries deliveries
	seen       seen
}

// Provision reads the plugin's configuration ("listen": the address of
// the tracking listener) and the signing key, made in the spool directory
// on first start.
func (p *Plugin) Provision(ctx *extension.Context) error {
	p.log, p.events = ctx.Logger, ctx.Events
	if p.now == nil {
		p.now = time.Now
	}
	for k, v := range ctx.Config {
		s, ok := v.(string)
		if k != "listen" || !ok {
			return fmt.Errorf("tracking: configuration %q: the plugin takes only listen = \"host:port\"", k)
		}
		p.listen = s
	}
	if ctx.DataDir == "" {
		// No node runs (corriere rules check): the plugin only reads its
		// rules, and makes no key or file.
		return nil
	}
	key, err := loadOrCreateKey(filepath.Join(ctx.DataDir, KeyFile))
	if err != nil {
		return err
	}
	p.signer = signer{key: key}
	return p.seen.open(filepath.Join(ctx.DataDir, SeenFile), defaultDedupWindow, p.now())
}

// Validate checks the listening address.
func (p *Plugin) Validate() error {
	if p.listen == "" {
		return nil
	}
	if p.signer.key == nil {
		return errors.New("tracking: a listener needs the node's spool directory, for the signing key")
	}
	if _, _, err := net.SplitHostPort(p.listen); err != nil {
		return fmt.Errorf("tracking: listen %q: want host:port: %w", p.listen, err)
	}
	return nil
}

// Start opens the tracking listener, when there is one, and serves it
// until Close.
func (p *Plugin) Start(context.Context) error {
	if p.listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("tracking: listen %s: %w", p.listen, err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("tracking: listener stopped", "err", err)
		}
	}()
	p.log.Info("tracking: listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the tracking listener's address, or "" when there is none.
func (p *Plugin) Addr() string {
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops the listener, letting requests in progress end for a few
// seconds.
func (p *Plugin) Close() error {
	var err error
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = p.srv.Shutdown(ctx)
	}
	return errors.Join(err, p.seen.close())
}

// Prepare implements extension.Preparer: it reads rules/tracking.lua, and
// its commit makes it the tracking in force. Without the file nothing is
// tracked; a broken file refuses the policy generation.
func (p *Plugin) Prepare(rulesDir string) (func(), error) {
	r, err := Load(rulesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return func() { p.rules.Store(nil) }, nil
	}
	if err != nil {
		return nil, err
	}
	return func() {
		p.rules.Store(r)
		if len(r.Tenants) > 0 && p.listen == "" && p.log != nil {
			p.log.Warn("tracking: tenants opt in, but there is no tracking listener (--tracking-listen): links are left as they are", "file", r.File)
		}
	}, nil
}

// Process implements extension.Stage: it rewrites the HTML parts of the
// messages of tenants and classes that are tracked.
func (p *Plugin) Process(_ context.Context, m *message.Message) error {
	if p.ln == nil {
		return nil
	}
	t, ok := p.rules.Load().tracks(m.Tenant, m.Class)
	if !ok || (!t.Opens && !t.Clicks) {
		return nil
	}
	c := claims{Host: t.Base.Hostname(), Tenant: m.Tenant, MsgID: m.ID, Class: string(m.Class), Campaign: m.Campaign}
	if len(m.Recipients) == 1 {
		c.Rcpt = m.Recipients[0].Addr
	}
	l := &linker{signer: p.signer, base: t.Base.String(), claims: c, keep: unsubscribeLinks(&m.Header), clicks: t.Clicks, opens: t.Opens}
	rewriteMessage(m, l)
	p.log.Debug("tracking: links rewritten", "msg_id", m.ID, "tenant", m.Tenant, "links", l.rewritten, "pixels", l.pixels)
	return nil
}

// StageOrder implements extension.StageOrderer: after the stages that
// change the message, before the signature, which must cover the
// rewritten links.
func (p *Plugin) StageOrder() int { return extension.SignOrder - 100 }

// Emit implements event.Sink: it remembers when, where and from which
// source the recipients of tracked mail were delivered.
func (p *Plugin) Emit(e *event.Event) {
	if e.Type != event.Delivered {
		return
	}
	if _, ok := p.rules.Load().tracks(e.Tenant, message.Class(e.Class)); !ok {
		return
	}
	at := e.Time
	if at.IsZero() {
		at = p.now()
	}
	p.deliveries.put(e.MsgID, e.Recipient, delivery{at: at, provider: e.Provider, source: e.Source})
}

// delivery is where and when a recipient was delivered.
type delivery struct {
	at               time.Time
	provider, source string
}

// The bounds of what deliveries remembers.
const (
	deliveryTTL   = 24 * time.Hour
	maxDeliveries = 1_000_000
)

// deliveries remembers the deliveries of tracked mail, by message and
// recipient, and by message alone (the first), for messages whose tokens
// name no recipient.
type deliveries struct {
	mu sync.Mutex
	m  map[[2]string]delivery
	// pruned is when the map was last pruned: a full map is pruned at
	// most once a minute, so that a burst beyond the bound costs a scan
	// a minute rather than one per delivery.
	pruned time.Time
}

func (d *deliveries) put(msgID, rcpt string, v delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[[2]string]delivery{}
	}
	if len(d.m) >= maxDeliveries {
		if v.at.Sub(d.pruned) < time.Minute {
			return
		}
		d.pruned = v.at
		for k, old := range d.m {
			if v.at.Sub(old.at) > deliveryTTL {
				delete(d.m, k)
			}
		}
		if len(d.m) >= maxDeliveries {
			return
		}
	}
	d.m[[2]string{msgID, rcpt}] = v
	if _, ok := d.m[[2]string{msgID, ""}]; !ok {
		d.m[[2]string{msgID, ""}] = v
	}
}

func (d *deliveries) get(msgID, rcpt string) (delivery, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[[2]string{msgID, rcpt}]
	return v, ok
}

var (
	_ extension.Provisioner  = (*Plugin)(nil)
	_ extension.Validator    = (*Plugin)(nil)
	_ extension.Starter      = (*Plugin)(nil)
	_ extension.Preparer     = (*Plugin)(nil)
	_ extension.Stage        = (*Plugin)(nil)
	_ extension.StageOrderer = (*Plugin)(nil)
	_ event.Sink             = (*Plugin)(nil)
)
