package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSinkFile: rules/eventsink.lua is read with the policy; a mistake
// refuses the generation with the file's name, and a missing file turns
// the sink off.
func TestSinkFile(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
		wantURL             string
	}{
		{"missing", "", "", ""},
		{"every event", `return { url = "https://ops.example/events", secret = "0123456789abcdef" }`, "", "https://ops.example/events"},
		{"some events", `return { url = "https://ops.example/events", secret = "0123456789abcdef", events = { "received", "bounced" } }`, "", "https://ops.example/events"},
		{"no url", `return { secret = "0123456789abcdef" }`, "is not an http or https URL", ""},
		{"short secret", `return { url = "https://ops.example/events", secret = "x" }`, "secret must be at least 16 characters", ""},
		{"events not a list", `return { url = "https://ops.example/events", secret = "0123456789abcdef", events = "all" }`, "events must be a list", ""},
		{"not Lua", `return {`, "eventsink.lua", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, SinkFile), []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := &Sink{}
			commit, err := p.Prepare(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), SinkFile) {
					t.Fatalf("Prepare = %v, want an error of %s containing %q", err, SinkFile, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			commit()
			got := ""
			if c := p.conf.Load(); c != nil {
				got = c.URL
			}
			if got != tt.wantURL {
				t.Errorf("URL %q, want %q", got, tt.wantURL)
			}
		})
	}
}
