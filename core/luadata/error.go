package luadata

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Error is a failure at a position in a Lua file: a syntax error, an error
// raised while the file runs, a file stopped by its deadline, or a value
// the file returned that its reader refuses. Its string form is
// "file:line: message", the form editors jump to.
type Error struct {
	// File is the path of the file as it was read (for example
	// "rules/dkim.lua"), or "" when the failure has no known file.
	File string
	// Line is the 1-based line, or 0 when the failure has no line (a
	// missing file, a value of the wrong type built by the whole file).
	Line int
	// Msg says what went wrong.
	Msg string
}

// Error formats e as "file:line: message", "file: message" without a line,
// or the message alone without a file.
func (e *Error) Error() string {
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
func (e *Error) Pos() string {
	if e.Line == 0 {
		return e.File
	}
	return e.File + ":" + strconv.Itoa(e.Line)
}

// positioned matches the "file:line: message" prefix gopher-lua puts on
// runtime errors raised in Lua code, and the "file: message" of errors
// about a whole file.
var positioned = regexp.MustCompile(`^([^\s:"]+\.lua):(?:(\d+):)? ?(.*)$`)

// FromLua turns an error returned by a protected gopher-lua call (PCall,
// DoString...) into an *Error, keeping the position of the Lua code that
// raised it and dropping the stack traceback. An *Error in err's chain (a
// Go function that failed with one) is returned as it is. A message
// without a position gives an *Error without File.
func FromLua(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	var api *lua.ApiError
	if errors.As(err, &api) {
		if api.Cause != nil {
			return FromLua(api.Cause)
		}
		msg = api.Object.String()
	}
	msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\nstack traceback:")
	if m := positioned.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[2])
		return &Error{File: m[1], Line: line, Msg: m[3]}
	}
	return &Error{Msg: msg}
}

// syntaxError turns a parse or compile error of file into an *Error.
// lastLine is where a parse error without a position is reported: the
// parser only says so of an unexpected end of file.
func syntaxError(file string, lastLine int, err error) *Error {
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
		return &Error{File: file, Line: line, Msg: msg}
	}
	var ce *lua.CompileError
	if errors.As(err, &ce) {
		return &Error{File: file, Line: ce.Line, Msg: ce.Message}
	}
	return &Error{File: file, Msg: fmt.Sprint(err)}
}
