package extension

import (
	"context"
	"log/slog"

	"corriere/core/event"
	"corriere/core/tenant"
)

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
// context (read keys, open files). It is the first call a plugin gets; an
// error stops the node from starting.
type Provisioner interface {
	Provision(ctx *Context) error
}

// Validator is implemented by plugins that check their configuration after
// provisioning. An error stops the node from starting.
type Validator interface {
	Validate() error
}

// Starter is implemented by plugins that run background work; the context
// ends at shutdown. Start must return once the work is started; an error
// stops the node from starting.
type Starter interface {
	Start(ctx context.Context) error
}
