package dkim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"corriere/core/extension"
	"corriere/core/luart"
	"corriere/core/message"
	"corriere/core/plugin"
	"corriere/core/tenant"
)

func init() {
	plugin.Register("dkim", func() any { return new(Plugin) })
}

// Plugin signs messages at ingest with the keys of rules/dkim.lua. It signs
// nothing until the policy engine prepares it and commits the result (see
// Prepare).
type Plugin struct {
	log   *slog.Logger
	rules atomic.Pointer[Rules]
	// tenants, when set, holds each tenant to its sender_domains: a From:
	// domain the tenant may not use is never signed for it.
	tenants tenant.Directory
}

// Provision takes the plugin's logger. The plugin takes no configuration
// section: what signs is policy, in rules/dkim.lua, which the policy engine
// loads with each generation through Prepare.
func (p *Plugin) Provision(ctx *extension.Context) error {
	if len(ctx.Config) > 0 {
		return errors.New("dkim: the plugin takes no configuration; keys and domains are in rules/" + FileName)
	}
	p.log = ctx.Logger
	p.tenants = ctx.Tenants
	return nil
}

// Prepare implements extension.Preparer: it reads rules/dkim.lua in rulesDir and
// the key files it names, and returns a commit that makes them the signing
// set in one atomic step. A broken file or key is a *luart.ScriptError at
// the line of rules/dkim.lua at fault, which refuses the whole policy
// generation: the current keys keep signing, and the node can restart on
// the files it accepted. Without rules/dkim.lua the committed set signs
// nothing.
func (p *Plugin) Prepare(rulesDir string) (commit func(), err error) {
	log := p.logger()
	r, err := Load(rulesDir, log)
	if errors.Is(err, fs.ErrNotExist) {
		file := filepath.Join(rulesDir, FileName)
		return func() {
			if p.rules.Swap(nil) != nil {
				log.Warn("dkim: rules file removed; messages leave unsigned from now on", "file", file)
				return
			}
			log.Info("dkim: no rules file; messages leave unsigned", "file", file)
		}, nil
	}
	var se *luart.ScriptError
	if errors.As(err, &se) {
		return nil, se
	}
	if err != nil {
		return nil, &luart.ScriptError{File: filepath.Join(rulesDir, FileName), Msg: err.Error()}
	}
	r.tenantDir = p.tenants
	return func() {
		p.rules.Store(r)
		p.logLoaded(log, r)
	}, nil
}

// discard is the logger of a plugin that was not provisioned with one.
var discard = slog.New(slog.DiscardHandler)

func (p *Plugin) logger() *slog.Logger {
	if p.log == nil {
		return discard
	}
	return p.log
}

func (p *Plugin) logLoaded(log *slog.Logger, r *Rules) {
	keys, active := 0, 0
	for _, d := range r.domains {
		keys += len(d.keys)
		active += len(d.active)
	}
	log.Info("dkim: keys loaded", "file", r.File, "domains", len(r.domains), "tenants", len(r.tenants),
		"keys", keys, "active", active)
}

// Process implements extension.Stage: it signs m (see Rules.Sign). A key that
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
		p.logger().Debug("dkim: no key for this message; not signed", "msg_id", m.ID, "tenant", m.Tenant)
		return nil
	}
	p.logger().Debug("dkim: signed", "msg_id", m.ID, "domain", s.Domain, "selectors", s.Selectors, "by", s.Why)
	return nil
}

// StageOrder implements extension.StageOrderer: signing comes after every stage
// that changes the message.
func (p *Plugin) StageOrder() int { return extension.SignOrder }

var (
	_ extension.Provisioner  = (*Plugin)(nil)
	_ extension.Preparer     = (*Plugin)(nil)
	_ extension.StageOrderer = (*Plugin)(nil)
	_ extension.Stage        = (*Plugin)(nil)
)
