// Package plugin is the registry through which Go extensions join the core
// without the core knowing them by name, and the driver of their
// lifecycle. What a plugin may implement, and when each part is called,
// is in core/extension.
//
// A plugin package calls Register in its init function with a namespaced ID
// ("dkim", "tracking", "shared.redis") and a factory without side effects.
// cmd/corriere blank-imports plugins/all, which imports the shipped set. At
// start the node calls Start, which instantiates the enabled plugins and
// drives each through the optional lifecycle interfaces, in this order:
// extension.Provisioner, extension.Validator, extension.Starter; Close
// calls io.Closer at shutdown. What a plugin extends is then found by type
// assertion against the contracts of core/extension (an ingest stage, a
// recipient check, a Lua module...).
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"corriere/core/extension"
)

// Factory makes a new, unprovisioned instance of a plugin.
type Factory func() any

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register adds a plugin factory under id. It panics when id is empty or
// already registered: two plugins claiming one name is a build error.
func Register(id string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if id == "" || f == nil {
		panic("plugin: Register with empty id or nil factory")
	}
	if _, dup := registry[id]; dup {
		panic(fmt.Sprintf("plugin: %q registered twice", id))
	}
	registry[id] = f
}

// IDs returns the registered plugin IDs, sorted.
func IDs() []string {
	mu.RLock()
	defer mu.RUnlock()
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// New instantiates the plugin registered under id.
func New(id string) (any, error) {
	mu.RLock()
	f, ok := registry[id]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("plugin: %q is not registered", id)
	}
	return f(), nil
}

// Start instantiates the plugins ids, in order, and takes each through its
// lifecycle before the next: Provision, with a copy of base whose Logger
// names the plugin and whose Config is configs[id]; Validate; Start, with
// ctx. It returns the plugins in the order of ids. When one fails, the
// plugins already started are closed (see Close) and the error names the
// plugin and the step. A nil base.Logger is slog.Default().
func Start(ctx context.Context, ids []string, base extension.Context, configs map[string]map[string]any) ([]any, error) {
	log := base.Logger
	if log == nil {
		log = slog.Default()
	}
	var out []any
	fail := func(err error) ([]any, error) {
		if cerr := Close(out); cerr != nil {
			log.Error("plugin close", "err", cerr)
		}
		return nil, err
	}
	for _, id := range ids {
		p, err := New(id)
		if err != nil {
			return fail(err)
		}
		c := base
		c.Logger = log.With("plugin", id)
		c.Config = configs[id]
		if pr, ok := p.(extension.Provisioner); ok {
			if err := pr.Provision(&c); err != nil {
				return fail(fmt.Errorf("plugin %s: provision: %w", id, err))
			}
		}
		if v, ok := p.(extension.Validator); ok {
			if err := v.Validate(); err != nil {
				return fail(fmt.Errorf("plugin %s: %w", id, err))
			}
		}
		if s, ok := p.(extension.Starter); ok {
			if err := s.Start(ctx); err != nil {
				return fail(fmt.Errorf("plugin %s: start: %w", id, err))
			}
		}
		out = append(out, p)
		log.Info("plugin enabled", "plugin", id)
	}
	return out, nil
}

// Close closes the plugins that implement io.Closer, in the reverse order
// of plugins, and returns their errors joined.
func Close(plugins []any) error {
	var errs []error
	for i := len(plugins) - 1; i >= 0; i-- {
		if c, ok := plugins[i].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
