package webhook

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/luadata"
	"corriere/core/outbox"
	"corriere/core/tenant"
)

// SinkFile is the operator's event sink configuration, in the rules
// directory.
const SinkFile = "eventsink.lua"

// Sink is the "eventsink" plugin: every event, of every tenant, to the
// operator's URL.
type Sink struct {
	base
	conf atomic.Pointer[sinkConf]
}

// sinkConf is rules/eventsink.lua.
type sinkConf struct {
	tenant.Webhook
}

// Provision implements extension.Provisioner.
func (p *Sink) Provision(ctx *extension.Context) error {
	p.provision("eventsink", ctx)
	return nil
}

// Start implements extension.Starter: it opens the outbox, whose workers
// resume the events left by the last run.
func (p *Sink) Start(context.Context) error {
	return p.start(func(ep outbox.Endpoint) (string, bool) {
		c := p.conf.Load()
		if c == nil || c.URL != ep.URL {
			return "", false
		}
		return c.Secret, true
	})
}

// Prepare implements extension.Preparer: it reads rules/eventsink.lua with
// the rest of the policy; without the file the sink sends nothing.
func (p *Sink) Prepare(rulesDir string) (func(), error) {
	path := filepath.Join(rulesDir, SinkFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return func() {
			p.conf.Store(nil)
			p.release()
		}, nil
	}
	t, err := luadata.LoadFile(path, luadata.Options{})
	if err != nil {
		return nil, err
	}
	fail := func(msg string) error { return &luadata.Error{File: path, Msg: msg} }
	c := &sinkConf{}
	if s, ok := t.RawGetString("url").(lua.LString); ok {
		c.URL = string(s)
	}
	if s, ok := t.RawGetString("secret").(lua.LString); ok {
		c.Secret = string(s)
	}
	switch ev := t.RawGetString("events").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		for i := 1; i <= ev.Len(); i++ {
			s, ok := ev.RawGetInt(i).(lua.LString)
			if !ok {
				return nil, fail("events must be a list of event type names")
			}
			c.Events = append(c.Events, string(s))
		}
	default:
		return nil, fail("events must be a list of event type names")
	}
	if err := c.check(); err != nil {
		return nil, fail(err.Error())
	}
	return func() {
		p.conf.Store(c)
		p.release()
	}, nil
}

// check is Webhook.Check, except that the operator may ask for every type
// of event, not only the tenants' ones.
func (c *sinkConf) check() error {
	w := c.Webhook
	w.Events = nil
	if err := w.Check(); err != nil {
		return err
	}
	for _, e := range c.Events {
		if e == "" {
			return errors.New("events: empty event type")
		}
	}
	return nil
}

// Emit implements event.Sink: it stores every event the sink asks for.
func (p *Sink) Emit(e *event.Event) {
	c := p.conf.Load()
	if c == nil || (len(c.Events) > 0 && !slices.Contains(c.Events, string(e.Type))) {
		return
	}
	p.add([]outbox.Endpoint{{URL: c.URL}}, e)
}

var (
	_ extension.Provisioner = (*Sink)(nil)
	_ extension.Starter     = (*Sink)(nil)
	_ extension.Preparer    = (*Sink)(nil)
	_ extension.AdminRoutes = (*Sink)(nil)
	_ event.Sink            = (*Sink)(nil)
)
