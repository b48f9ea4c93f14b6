// Package luadata runs Lua files safely: the policy data under rules/
// (rules/bounces.lua, rules/dkim.lua) and, through the policy engine
// (core/luart), the hook scripts. It gives three things: a sandboxed Lua
// state (NewState), a loader that compiles a data file (Compile) and runs it
// under a deadline in a fresh sandbox for the table it returns (Run,
// LoadFile), and one error type for a failure at a position in a file
// (Error, formatted "file:line: message", the form editors jump to), with
// FromLua to build it from any error gopher-lua returns.
//
// # Guarantees of the sandbox
//
// A state from NewState has the base library without the functions that
// reach files or load code (dofile, loadfile, load, loadstring, module,
// require), stop the world (collectgarbage), write to stdout (print,
// _printregs) or rewire environments (getfenv, setfenv, newproxy); and the
// string, table and math libraries. There is no os, io, debug, coroutine,
// channel or package library. The sandbox guards against mistakes in a
// file (a loop, a typo, a number off by a few zeros), not against its
// author, who already controls the policy.
//
// One call of a Go function cannot be interrupted, so the library functions
// that can build a result much longer than their arguments check its size
// before they build it and raise an error instead: string.rep stops at
// 1 MiB, string.format refuses widths and precisions over 99, string.gsub
// refuses a call whose result could exceed Options.MaxResult or whose
// replacements would copy a long subject too many times, and table.concat
// refuses a result over Options.MaxResult. The depth of the call stack is
// bounded too, so a runaway recursion is a "stack overflow" error, not a
// crash.
//
// Nothing else bounds memory: a loop that doubles a string with the ..
// operator grows until the deadline stops it. The policy engine adds its
// own memory watchdog for hook calls (core/luart); a data file runs once,
// at load.
//
// # Deadline
//
// Run and LoadFile stop a file still running after Options.Timeout
// (DefaultTimeout, 2 seconds, unless set): data has no reason to loop, so a
// file that runs that long has a loop by mistake. gopher-lua checks the
// deadline before every instruction, so the stop comes at the next
// instruction boundary, and the error names the line it stopped at.
//
// # Errors
//
// Every failure to compile or run a file is an *Error: a syntax error at
// its line ("at end of file" for an unclosed block), a runtime error at the
// line that raised it (without gopher-lua's stack traceback: one line per
// event in the logs), a file stopped by the deadline, or a file that does
// not return a table (at the line of its return statement). Callers that
// check the returned table report their own findings as *Error too, so an
// operator sees one format whatever is wrong.
package luadata
