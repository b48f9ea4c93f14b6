package luart

import (
	"errors"
	"strings"

	"corriere/core/luadata"
)

// ErrBudget is wrapped by a HookError when a hook ran out of its time
// budget (Options.CallTimeout) and was stopped.
var ErrBudget = errors.New("time budget exceeded")

// ErrMemoryBudget is wrapped by a HookError when a hook held more memory
// than its budget (Options.CallMemory) and was stopped.
var ErrMemoryBudget = errors.New("memory budget exceeded")

// ScriptError is a failure at a position in a policy file: a syntax error,
// an error raised while a file loads, or an error raised by a hook. It is
// the one error type of Lua files in Corriere (luadata.Error), so the
// plugins' data files report the same way; its string form is
// "file:line: message", the form editors jump to.
type ScriptError = luadata.Error

// HookError is the failure of one hook call. The Policy methods return it;
// the core maps any error to the safe outcome of the method (a temporary
// failure at ingest, a retry at delivery).
type HookError struct {
	// Hook is the hook that failed ("classify", "route", ...).
	Hook string
	// Tenant is the tenant whose override ran, or "" for a default hook.
	Tenant string
	// Err is a *ScriptError with the script position, wrapping ErrBudget
	// (through Unwrap) when the hook was stopped for running too long and
	// ErrMemoryBudget when it was stopped for holding too much memory.
	Err error
	// Timeout is true when the hook ran out of its time budget.
	Timeout bool
	// Memory is true when the hook ran out of its memory budget.
	Memory bool
	// Quarantined is true when the call ran under the short time budget
	// of a quarantined hook (see Options.QuarantineStrikes).
	Quarantined bool
}

// Error formats e as "luart: hook classify (tenant acme): file:line: message".
func (e *HookError) Error() string {
	var b strings.Builder
	b.WriteString("luart: hook ")
	b.WriteString(e.Hook)
	if e.Tenant != "" {
		b.WriteString(" (tenant ")
		b.WriteString(e.Tenant)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, with ErrBudget for timeouts and
// ErrMemoryBudget for memory.
func (e *HookError) Unwrap() []error {
	switch {
	case e.Timeout:
		return []error{e.Err, ErrBudget}
	case e.Memory:
		return []error{e.Err, ErrMemoryBudget}
	}
	return []error{e.Err}
}
