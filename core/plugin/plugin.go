// Package plugin is the registry through which Go extensions join the core
// without the core knowing them by name.
//
// A plugin package calls Register in its init function with a namespaced ID
// ("dkim", "tracking", "shared.redis") and a factory without side effects.
// cmd/corriere blank-imports plugins/all, which imports the shipped set. At
// start the node instantiates every registered plugin and drives its
// lifecycle through optional interfaces, in this order: Provisioner,
// Validator, Starter, and io.Closer at shutdown. What a plugin extends is
// found by type assertion against the small interfaces declared where they
// are used (for example an ingest stage or a Lua module). A plugin that
// keeps policy of its own in the rules directory implements luart.Preparer,
// so that its files load, and are refused, together with each policy
// generation instead of after it.
package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"corriere/core/event"
	"corriere/core/tenant"
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

// Context is what a plugin may use while provisioning.
type Context struct {
	// RulesDir is the policy data directory (key files, tables).
	RulesDir string
	// DataDir is the node's state directory (the spool lives under it).
	DataDir string
	// Logger logs with the plugin's ID attached.
	Logger *slog.Logger
	// Events is the node's event bus.
	Events *event.Bus
	// Tenants looks tenants up in the policy in force. It answers from the
	// moment the node accepts mail (it is provisioned before the policy is
	// loaded); nil where no node runs, as in `corriere rules check`.
	Tenants tenant.Directory
	// Config is the plugin's section of the configuration file, if any.
	Config map[string]any
}

// Provisioner is implemented by plugins that set themselves up from the
// context (read keys, open files).
type Provisioner interface {
	Provision(ctx *Context) error
}

// Validator is implemented by plugins that check their configuration after
// provisioning.
type Validator interface {
	Validate() error
}

// Starter is implemented by plugins that run background work; the context
// ends at shutdown.
type Starter interface {
	Start(ctx context.Context) error
}
