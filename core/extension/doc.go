// Package extension holds the contracts between Corriere's core and its Go
// extensions: every interface a plugin may implement, the verdicts it may
// return, and the context it is provisioned with. It is a leaf: it imports
// only the standard library and the value packages message, reply, event
// and tenant, so a plugin that implements a contract does not import the
// part of the core that calls it. The registry (plugin.Register) and the
// driver of the lifecycle (plugin.Start) are in core/plugin.
//
// A plugin registers a factory in its init function; cmd/corriere
// blank-imports plugins/all. At start the node instantiates every enabled
// plugin and finds what it extends by type assertion, so each contract is
// optional. A plugin states the contracts it means to keep at the end of
// its file, so that the compiler checks them:
//
//	var _ extension.Stage = (*Plugin)(nil)
//
// The extension points, in the order a plugin meets them:
//
//   - Provisioner, at node start, in the order of the plugins, before the
//     policy is loaded: the plugin takes its logger, directories and
//     configuration from a Context. No deadline. An error stops the node
//     from starting; the plugins already started are closed.
//   - Validator, right after Provision: checks the configuration. No
//     deadline. An error stops the node from starting.
//   - Starter, right after Validate: starts background work bound to a
//     context that ends at shutdown. Start must return once the work runs.
//     An error stops the node from starting.
//   - Preparer, at start and at every policy reload (SIGHUP, a changed
//     file): reads the plugin's own files in the rules directory with the
//     new Lua generation, and commits them when the generation becomes
//     current. No deadline of its own. An error refuses the whole
//     generation: the policy in force, and the plugin's files in force,
//     stay.
//   - luart.Module (in core/luart, as it needs the Lua interpreter): a Lua
//     module scripts require. It runs inside hook calls, under the call
//     time and memory budgets of luart.Options; an error raised from it
//     is the hook's error.
//   - RecipientCheck, at every RCPT TO, in the order of the checks (the
//     suppression list first, then the plugins): ctx ends after
//     ingest.Options.CheckTimeout (5 seconds by default) for all the checks
//     of one recipient together, after which the recipient gets
//     451 4.3.0, logged and counted as "recipient_check_timeout". The
//     verdict is the error: nil accepts, a *Refusal or *reply.Reply
//     refuses with that reply, a *Drop accepts without delivering, any
//     other error answers 451 4.3.0.
//   - Stage, for every accepted message, after the policy's Classify and
//     Rewrite and before the spool, in StageOrder (signing last,
//     SignOrder): ctx ends after ingest.Options.PolicyTimeout (10 seconds
//     by default), which bounds the policy calls and the stages of one
//     message together. An error answers 451 4.3.0: the message is not
//     accepted, so the client retries.
//   - event.Sink (in core/event, where the bus is): receives every event,
//     synchronously from its producer. Emit must return quickly and not
//     keep the event; slow work goes to a queue of the plugin's own.
//   - io.Closer, at shutdown, in the reverse order of start, after ingest
//     and delivery have stopped. An error is logged.
package extension
