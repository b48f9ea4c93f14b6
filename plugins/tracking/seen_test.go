package tracking

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/extension"
)

// TestSeenSurvivesRestart: a recipient's first open is not first again
// after the file is reopened, until the window has passed; the file is
// compacted at each open.
func TestSeenSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), SeenFile)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const window = 30 * 24 * time.Hour
	open := func(at time.Time) *seen {
		t.Helper()
		s := &seen{}
		if err := s.open(path, window, at); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := func(s *seen, k seenKey, at time.Time) bool {
		t.Helper()
		ok, err := s.first(k, at, window)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	open1 := seenKey{typ: event.Opened, msgID: "m1", rcpt: "a@b.test"}
	machine := seenKey{typ: event.Opened, category: event.MachineOpen, msgID: "m1", rcpt: "a@b.test"}
	old := seenKey{typ: event.Clicked, msgID: "m0", rcpt: "a@b.test"}

	s := open(now.Add(-40 * 24 * time.Hour))
	if !first(s, old, now.Add(-40*24*time.Hour)) {
		t.Fatal("the old click is not first")
	}
	s.close()
	s = open(now)
	if !first(s, open1, now) || first(s, open1, now.Add(time.Minute)) || !first(s, machine, now) {
		t.Fatal("first opens wrong before the restart")
	}
	s.close()

	s = open(now.Add(time.Hour))
	defer s.close()
	if first(s, open1, now.Add(time.Hour)) || first(s, machine, now.Add(time.Hour)) {
		t.Error("an open seen before the restart is first again")
	}
	if !first(s, seenKey{typ: event.Clicked, msgID: "m1", rcpt: "a@b.test"}, now.Add(time.Hour)) {
		t.Error("the first click is not first")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "m0") || strings.Count(string(b), "\n") != 3 {
		t.Errorf("file after compaction and one more click:\n%s", b)
	}
}

// TestProvisionWithoutANode: provisioned for a policy check, without a
// spool directory, the plugin makes no key and no file where it runs.
func TestProvisionWithoutANode(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	p := new(Plugin)
	if err := p.Provision(&extension.Context{RulesDir: dir}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files made: %v", entries)
	}
	p.listen = "127.0.0.1:0"
	if err := p.Validate(); err == nil {
		t.Error("a listener without a signing key is valid")
	}
}
