package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// OptionsFile is the file, in SpoolDir, where Start writes the effective
// configuration, as Pebble writes its OPTIONS file: what the node really
// runs with, defaults filled in and secrets redacted. Corriere rewrites it
// at each start and never reads it.
const OptionsFile = "OPTIONS"

// redacted stands for a secret in the effective configuration.
const redacted = "<redacted>"

// secrets are the Config fields whose values the effective configuration
// never shows.
var secrets = map[string]bool{"AdminToken": true, "RedisPassword": true}

// setting is one field of the effective configuration.
type setting struct{ name, value string }

// settings returns the fields of c in declaration order, named in
// snake_case, with secrets redacted. Fields that hold dependencies rather
// than settings (the logger) are left out. It reads the fields by
// reflection so that a new field shows up without anyone remembering it.
func (c *Config) settings() []setting {
	v := reflect.ValueOf(*c)
	var out []setting
	for i := range v.NumField() {
		f, value := v.Type().Field(i), v.Field(i)
		switch value.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Func, reflect.Chan:
			continue
		}
		s := formatSetting(value)
		if secrets[f.Name] && s != "" {
			s = redacted
		}
		out = append(out, setting{snakeCase(f.Name), s})
	}
	return out
}

// formatSetting writes a list as its elements separated by commas, and
// anything else as fmt does.
func formatSetting(v reflect.Value) string {
	if v.Kind() != reflect.Slice {
		return fmt.Sprint(v.Interface())
	}
	elems := make([]string, v.Len())
	for i := range elems {
		elems[i] = fmt.Sprint(v.Index(i).Interface())
	}
	return strings.Join(elems, ", ")
}

// snakeCase turns a Go field name into the snake_case of log keys,
// keeping initialisms whole: "MaxSessionsPerIP" is "max_sessions_per_ip",
// "DNSServers" is "dns_servers".
func snakeCase(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			wordStart := i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]))
			if wordStart {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// recordOptions logs the effective configuration as one record and writes
// it to SpoolDir/OPTIONS. A file that cannot be written is logged, not
// fatal: a node must start on a full disk, to deliver what it holds.
func (n *Node) recordOptions() {
	settings := n.cfg.settings()
	attrs := make([]slog.Attr, len(settings))
	for i, s := range settings {
		attrs[i] = slog.String(s.name, s.value)
	}
	n.log.LogAttrs(context.Background(), slog.LevelInfo, "effective configuration", attrs...)
	path := filepath.Join(n.cfg.SpoolDir, OptionsFile)
	if err := writeOptions(path, settings, time.Now()); err != nil {
		n.log.Error("effective configuration not written", "file", path, "err", err)
	}
}

// writeOptions writes settings to path as "name = value" lines, replacing
// the file atomically: a reader sees the old file or the new one, whole.
func writeOptions(path string, settings []setting, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# The effective configuration of the Corriere node started at %s on this\n", now.UTC().Format(time.RFC3339))
	b.WriteString("# spool: defaults filled in, secrets redacted. Written at each start and never\n")
	b.WriteString("# read: change the flags or the --config file instead.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = %s\n", s.name, s.value)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		// Synced before the rename, so that a crash cannot leave an
		// empty file in place of the last one.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("node: %s: %w", path, err)
	}
	return nil
}
