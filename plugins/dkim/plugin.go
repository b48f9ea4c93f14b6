package dkim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"corriere/core/event"
	"corriere/core/ingest"
	"corriere/core/message"
	"corriere/core/plugin"
)

func init() {
	plugin.Register("dkim", func() any { return new(Plugin) })
}

// Plugin signs messages at ingest with the keys of rules/dkim.lua. The zero
// value signs nothing until Provision.
type Plugin struct {
	dir   string
	log   *slog.Logger
	rules atomic.Pointer[Rules]

	reloadMu sync.Mutex // one reload at a time

	mu      sync.Mutex // guards closed and adding to reloads
	closed  bool
	reloads sync.WaitGroup
}

// Provision reads rules/dkim.lua from the node's rules directory ("./rules"
// when unset) and the key files it names. Without rules/dkim.lua the plugin
// signs nothing; a broken file or key fails the node's start. The plugin
// takes no configuration section: what signs is policy, in rules/dkim.lua.
func (p *Plugin) Provision(ctx *plugin.Context) error {
	if len(ctx.Config) > 0 {
		return errors.New("dkim: the plugin takes no configuration; keys and domains are in rules/" + FileName)
	}
	p.dir, p.log = ctx.RulesDir, ctx.Logger
	if p.dir == "" {
		p.dir = "./rules"
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	r, err := Load(p.dir, p.log)
	if errors.Is(err, fs.ErrNotExist) {
		p.log.Info("dkim: no rules file; messages leave unsigned", "file", filepath.Join(p.dir, FileName))
		return nil
	}
	if err != nil {
		return err
	}
	p.rules.Store(r)
	p.logLoaded(r)
	return nil
}

// Reload reads rules/dkim.lua and its keys again and, when they load,
// replaces the current set atomically. On error the current set stays.
func (p *Plugin) Reload() error {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	r, err := Load(p.dir, p.log)
	if err != nil {
		return err
	}
	p.rules.Store(r)
	p.logLoaded(r)
	return nil
}

func (p *Plugin) logLoaded(r *Rules) {
	keys, active := 0, 0
	for _, d := range r.domains {
		keys += len(d.keys)
		active += len(d.active)
	}
	p.log.Info("dkim: keys loaded", "file", r.File, "domains", len(r.domains), "tenants", len(r.tenants),
		"keys", keys, "active", active)
}

// Emit implements event.Sink: a newly loaded policy generation makes the
// plugin reload rules/dkim.lua in the background.
func (p *Plugin) Emit(e *event.Event) {
	if e.Type != event.PolicyLoad || e.Category != "loaded" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.log == nil {
		return
	}
	p.reloads.Add(1)
	go func() {
		defer p.reloads.Done()
		if err := p.Reload(); err != nil {
			p.log.Error("dkim: reload refused; signing with the previous keys", "err", err)
		}
	}()
}

// Process implements ingest.Stage: it signs m (see Rules.Sign). A key that
// fails to sign is an error, so the message is refused with a temporary
// failure rather than sent unsigned.
func (p *Plugin) Process(_ context.Context, m *message.Message) error {
	r := p.rules.Load()
	if r == nil {
		return nil
	}
	s, err := r.Sign(m)
	if err != nil {
		return fmt.Errorf("dkim: message %s: %w", m.ID, err)
	}
	if s.Domain == "" {
		p.log.Debug("dkim: no key for this message; not signed", "msg_id", m.ID, "tenant", m.Tenant)
		return nil
	}
	p.log.Debug("dkim: signed", "msg_id", m.ID, "domain", s.Domain, "selectors", s.Selectors, "by", s.Why)
	return nil
}

// StageOrder implements ingest.StageOrderer: signing comes after every stage
// that changes the message.
func (p *Plugin) StageOrder() int { return ingest.SignOrder }

// Close waits for a reload in progress and stops reacting to reloads.
func (p *Plugin) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.reloads.Wait()
	return nil
}

var (
	_ plugin.Provisioner  = (*Plugin)(nil)
	_ ingest.StageOrderer = (*Plugin)(nil)
	_ event.Sink          = (*Plugin)(nil)
	_ io.Closer           = (*Plugin)(nil)
	_ ingest.Stage        = (*Plugin)(nil)
)
