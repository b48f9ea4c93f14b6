package tracking

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/luart"
	"corriere/core/message"
)

// TestLoad: rules/tracking.lua, valid and invalid, side by side.
func TestLoad(t *testing.T) {
	tests := []struct {
		name, src string
		err       string // "" when the file is valid
	}{
		{"opt-in", `return { tenants = { shop = { url = "https://click.shop.test/", classes = { "newsletter", "transactional" }, opens = false } }, scanner_window = "3s" }`, ""},
		{"empty", `return {}`, ""},
		{"unknown field", `return { tenant = {} }`, `unknown field "tenant"`},
		{"not a URL", `return { tenants = { shop = { url = "click.shop.test", classes = { "newsletter" } } } }`, `tenants["shop"].url`},
		{"a path in the URL", `return { tenants = { shop = { url = "https://shop.test/track", classes = { "newsletter" } } } }`, `tenants["shop"].url`},
		{"no classes", `return { tenants = { shop = { url = "https://click.shop.test" } } }`, "needs url and classes"},
		{"unknown class", `return { tenants = { shop = { url = "https://click.shop.test", classes = { "bulk" } } } }`, `unknown class "bulk"`},
		{"opens not a boolean", `return { tenants = { shop = { url = "https://click.shop.test", classes = { "newsletter" }, opens = "yes" } } }`, "want true or false"},
		{"bad network", `return { scanner_networks = { "10.0.0.0/33" } }`, "scanner_networks[1]"},
		{"bad duration", `return { scanner_window = "soon" }`, "scanner_window"},
		{"syntax error", `return {`, "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.src+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Load(dir)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *luart.ScriptError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), FileName) {
				t.Errorf("Load = %v, %v; want a script error about %q", r, err, tt.err)
			}
		})
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(tests[0].src), 0o644)
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	shop, ok := r.tracks("shop", message.Transactional)
	if !ok || shop.Base.String() != "https://click.shop.test" || shop.Opens || !shop.Clicks || r.ScannerWindow != 3*time.Second {
		t.Errorf("rules = %+v, shop = %+v", r, shop)
	}
	if _, ok := r.tracks("shop", message.Critical); ok {
		t.Error("critical mail is tracked")
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load without the file = %v, want fs.ErrNotExist", err)
	}
}
