package luart

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// ErrBudget is wrapped by a HookError when a hook ran out of its time
// budget (Options.CallTimeout) and was stopped.
var ErrBudget = errors.New("time budget exceeded")

// ErrMemoryBudget is wrapped by a HookError when a hook held more memory
// than its budget (Options.CallMemory) and was stopped.
var ErrMemoryBudget = errors.New("memory budget exceeded")

// ScriptError is a failure at a position in a policy file: a syntax error,
// an error raised while a file loads, or an error raised by a hook. Its
// string form is "file:line: message", the form editors jump to.
type ScriptError struct {
	// File is the path of the file as the engine read it (for example
	// "scripts/classify.lua").
	File string
	// Line is the 1-based line, or 0 when the failure has no line (a
	// missing file, a value of the wrong type returned by a whole file).
	Line int
	// Msg says what went wrong.
	Msg string
}

// Error formats e as "file:line: message".
func (e *ScriptError) Error() string {
	switch {
	case e.File == "":
		return e.Msg
	case e.Line == 0:
		return e.File + ": " + e.Msg
	default:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
}

// Pos returns "file:line", or the file alone when the line is unknown.
func (e *ScriptError) Pos() string {
	if e.Line == 0 {
		return e.File
	}
	return e.File + ":" + strconv.Itoa(e.Line)
}

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

// positioned matches the "file:line: message" prefix gopher-lua puts on
// runtime errors raised in Lua code, and the "file: message" of errors
// about a whole file.
var positioned = regexp.MustCompile(`^([^\s:"]+\.lua):(?:(\d+):)? ?(.*)$`)

// luaError turns an error from a protected gopher-lua call into a
// *ScriptError, keeping the position of the Lua code that raised it and
// dropping the stack traceback (one line per event in the logs).
func luaError(err error) *ScriptError {
	var se *ScriptError
	if errors.As(err, &se) {
		return se
	}
	msg := err.Error()
	var api *lua.ApiError
	if errors.As(err, &api) {
		if api.Cause != nil {
			return luaError(api.Cause)
		}
		msg = api.Object.String()
	}
	msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\nstack traceback:")
	if m := positioned.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[2])
		return &ScriptError{File: m[1], Line: line, Msg: m[3]}
	}
	return &ScriptError{Msg: msg}
}

// syntaxError turns a parse or compile error into a *ScriptError for file.
func syntaxError(file string, lastLine int, err error) *ScriptError {
	var pe *parse.Error
	if errors.As(err, &pe) {
		line := pe.Pos.Line
		msg := pe.Message
		if line <= 0 {
			line = lastLine
			msg += " at end of file"
		} else if pe.Token != "" {
			msg += " near '" + pe.Token + "'"
		}
		return &ScriptError{File: file, Line: line, Msg: msg}
	}
	var ce *lua.CompileError
	if errors.As(err, &ce) {
		return &ScriptError{File: file, Line: ce.Line, Msg: ce.Message}
	}
	return &ScriptError{File: file, Msg: fmt.Sprint(err)}
}
