package extension

// Preparer is implemented by plugins that keep policy of their own in the
// rules directory (the dkim plugin's rules/dkim.lua and the key files it
// names), so that it changes in the same atomic step as the Lua policy: the
// policy engine prepares every Preparer for each new generation, and the
// generation becomes current only when all of them, and the Lua files,
// load. A broken plugin file refuses the whole generation, so a policy that
// was accepted is one the node can restart with (caddy provisions every
// module of a new configuration before it replaces the old one).
type Preparer interface {
	// Prepare reads and checks the plugin's files in rulesDir, without
	// changing what the plugin uses now, and returns commit, which makes
	// what it read current. The engine calls commit right after the new
	// generation becomes current, or never when the generation is
	// refused; commit cannot fail. An error should be a
	// *luart.ScriptError, so it is reported as "file:line: message" like
	// every policy error. The engine never calls Prepare concurrently with
	// itself.
	Prepare(rulesDir string) (commit func(), err error)
}
