package luart

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"corriere/core/luadata"
)

// kind says what a policy file is, by where it lives.
type kind int

const (
	hookScript   kind = iota // scripts/*.lua: default hooks
	tenantScript             // scripts/tenants/<tenant>.lua: per-tenant hooks
	rulesData                // rules/*.lua: data module "rules.<name>"
	tenantData               // rules/tenants/<tenant>.lua: a tenant account
)

// source is one compiled policy file.
type source struct {
	// rel is the path as shown in errors: the directory as configured
	// joined with the file's name ("scripts/classify.lua").
	rel string
	// kind and name: the hook file's base name, the tenant, or the rules
	// module's base name.
	kind kind
	name string
	// proto is the compiled chunk, shared by every state of a generation.
	proto *lua.FunctionProto
	// sum identifies the file's content, to reuse what was built from an
	// unchanged file by the previous generation.
	sum [sha256.Size]byte
}

// tenantName is what a tenant file may be called: it is also the SMTP AUTH
// user name.
var tenantName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]*$`)

// listSources finds and compiles every policy file under the two
// directories. Subdirectories other than tenants/ are ignored (plugins keep
// key files and other data there), and so are names starting with "." or
// "#" (editor lock and backup files).
func listSources(scriptsDir, rulesDir string) ([]*source, error) {
	var out []*source
	for _, d := range []struct {
		dir        string
		top, under kind
	}{
		{scriptsDir, hookScript, tenantScript},
		{rulesDir, rulesData, tenantData},
	} {
		if st, err := os.Stat(d.dir); err != nil {
			return nil, fmt.Errorf("luart: policy directory: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("luart: policy directory %s is not a directory", d.dir)
		}
		top, err := luaFiles(d.dir)
		if err != nil {
			return nil, err
		}
		under, err := luaFiles(filepath.Join(d.dir, "tenants"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, group := range []struct {
			dir   string
			names []string
			kind  kind
		}{{d.dir, top, d.top}, {filepath.Join(d.dir, "tenants"), under, d.under}} {
			for _, name := range group.names {
				src, err := compileFile(filepath.Join(group.dir, name), group.kind)
				if err != nil {
					return nil, err
				}
				out = append(out, src)
			}
		}
	}
	return out, nil
}

// luaFiles returns the sorted names of the .lua files directly in dir.
func luaFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("luart: read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".lua") || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "#") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// compileFile reads and compiles one file. Compiling happens once per
// generation; states run the shared prototype.
func compileFile(path string, k kind) (*source, error) {
	src := &source{rel: path, kind: k, name: strings.TrimSuffix(filepath.Base(path), ".lua")}
	if (k == tenantScript || k == tenantData) && !tenantName.MatchString(src.name) {
		return nil, &ScriptError{File: path, Msg: fmt.Sprintf("%q is not a valid tenant name (letters, digits and . _ @ + -)", src.name)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ScriptError{File: path, Msg: err.Error()}
	}
	chunk, err := luadata.Compile(path, data)
	if err != nil {
		return nil, err
	}
	src.proto = chunk.Proto
	src.sum = sha256.Sum256(data)
	return src, nil
}
