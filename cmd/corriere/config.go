package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// applyConfigFile reads a corriere serve configuration file, one
// "name = value" per line ("#" starts a comment; repeat a line for a
// repeatable setting), and sets each setting fs has that was not given on
// the command line. A name that is not a setting of serve is an error, so
// that a typo does not pass unnoticed in any command. Values of path
// settings (those whose help names a `file` or `directory`) are relative
// to the file's directory, so a configuration works from any current
// directory.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	serve, _ := newServeFlags()
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want \"name = value\"", path, line)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "config" {
			return fmt.Errorf("%s:%d: a configuration file cannot include another", path, line)
		}
		def := serve.Lookup(name)
		if def == nil {
			return fmt.Errorf("%s:%d: unknown setting %q%s (see corriere serve --help)", path, line, name, suggestName(serve, name))
		}
		f := fs.Lookup(name)
		if f == nil || given[name] {
			continue
		}
		if isPathFlag(def) && value != "" && value != "-" && !filepath.IsAbs(value) {
			value = filepath.Join(base, value)
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, line, name, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	return nil
}

// isPathFlag reports whether f takes a file or directory name, as its
// help's placeholder says.
func isPathFlag(f *flag.Flag) bool {
	placeholder, _ := flag.UnquoteUsage(f)
	return placeholder == "file" || placeholder == "directory"
}
