package luadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Chunk is a compiled Lua file.
type Chunk struct {
	// File is the name the file was compiled under, which positions in
	// errors carry: its path as read.
	File string
	// Stmts is the parsed file, for readers that point their errors at
	// the line of a field of the returned table constructor.
	Stmts []ast.Stmt
	// Proto is the compiled file. It is immutable, and may run in any
	// number of states.
	Proto *lua.FunctionProto
}

// Compile parses and compiles src, the content of file. A syntax error is
// an *Error at its line.
func Compile(file string, src []byte) (*Chunk, error) {
	stmts, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil || stmts == nil && len(bytes.TrimSpace(src)) > 0 {
		if err == nil {
			err = errors.New("cannot parse file")
		}
		return nil, syntaxError(file, bytes.Count(src, []byte("\n"))+1, err)
	}
	proto, err := lua.Compile(stmts, file)
	if err != nil {
		return nil, syntaxError(file, 0, err)
	}
	return &Chunk{File: file, Stmts: stmts, Proto: proto}, nil
}

// ReturnLine returns the line of the return statement that ends the file,
// or 0 when the file does not end with one.
func (c *Chunk) ReturnLine() int {
	if len(c.Stmts) == 0 {
		return 0
	}
	if ret, ok := c.Stmts[len(c.Stmts)-1].(*ast.ReturnStmt); ok {
		return ret.Line()
	}
	return 0
}

// Run runs c once in a fresh sandbox (NewState) under opts.Timeout and
// returns the table it returns. Every failure is an *Error: a runtime
// error at the line that raised it, a file still running at the deadline
// at the line it was stopped at, a file that returns anything but a table
// at its return statement. The table outlives the state, which is closed:
// read its fields, do not call its functions.
func Run(c *Chunk, opts Options) (*lua.LTable, error) {
	opts.EnsureDefaults()
	L := NewState(opts)
	defer L.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	L.SetContext(ctx)
	L.Push(L.NewFunctionFromProto(c.Proto))
	if err := L.PCall(0, 1, nil); err != nil {
		e := *FromLua(err)
		if e.File == "" {
			e.File = c.File
		}
		if ctx.Err() != nil {
			e.Msg = fmt.Sprintf("still running after %v: a data file must not loop", opts.Timeout)
		}
		return nil, &e
	}
	v := L.Get(-1)
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, &Error{File: c.File, Line: c.ReturnLine(), Msg: fmt.Sprintf("must return a table, not %s", v.Type())}
	}
	return t, nil
}

// LoadFile reads, compiles and runs the data file at path (see Compile
// and Run) and returns the table it returns. A file that cannot be read
// is an error wrapping the fs error (fs.ErrNotExist...), any other
// failure an *Error.
func LoadFile(path string, opts Options) (*lua.LTable, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("luadata: %w", err)
	}
	c, err := Compile(path, src)
	if err != nil {
		return nil, err
	}
	return Run(c, opts)
}
