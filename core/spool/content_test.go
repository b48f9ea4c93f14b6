package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestContentFile checks that a big content is stored as a file, read back
// whole, deleted with its message's last entry or with an abandoned batch,
// and that Recover and Scan remove files no message owns.
func TestContentFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, FileThreshold: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	files := func() []string {
		t.Helper()
		des, err := os.ReadDir(filepath.Join(dir, contentDir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		return names
	}

	small := testMessage(t, "a@example.org")
	if _, _, err := s.Put(small, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := files(); len(got) != 0 {
		t.Fatalf("a small content made files %v", got)
	}

	big := bigMessage(t, 4<<10, "a@example.org")
	big.Recipients = append(big.Recipients, big.Recipients[0])
	big.Recipients[1].Addr = "b@example.org"
	_, entries, err := s.Put(big, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := files(); len(got) != 1 || got[0] != big.ID {
		t.Fatalf("content files = %v, want [%s]", got, big.ID)
	}
	if _, closer, err := s.db.Get(contentKey(big.ID)); err == nil {
		closer.Close()
		t.Fatal("a big content is also in Pebble")
	}
	got, err := s.Content(big.ID)
	if err != nil || !bytes.Equal(got, big.Bytes()) {
		t.Fatalf("Content of a file-stored message differs (err %v)", err)
	}

	// An abandoned batch leaves no file behind.
	abandoned := bigMessage(t, 4<<10, "c@example.org")
	b := s.NewBatch()
	if _, _, err := b.Put(abandoned, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got := files(); len(got) != 1 {
		t.Fatalf("content files after an abandoned batch = %v", got)
	}

	// Strays from a crash: a half-written file and one whose message is
	// gone. Both start-up paths remove them: Recover (the queue's) and Scan.
	for _, recovery := range []struct {
		name string
		run  func(*Spool) error
	}{
		{"Recover", func(s *Spool) error { return s.Recover(func(Pending) error { return nil }) }},
		{"Scan", func(s *Spool) error { return s.Scan(func(*Meta, []*Entry) error { return nil }) }},
	} {
		for _, name := range []string{"gone", big.ID + ".tmp"} {
			if err := os.WriteFile(filepath.Join(dir, contentDir, name), []byte("x"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(Options{Dir: dir, FileThreshold: 1 << 10}); err != nil {
			t.Fatal(err)
		}
		if err := recovery.run(s); err != nil {
			t.Fatal(err)
		}
		if got := files(); len(got) != 1 || got[0] != big.ID {
			t.Fatalf("content files after %s = %v, want only [%s]", recovery.name, got, big.ID)
		}
	}

	// The file goes with the last entry, not before.
	if err := s.Remove(entries[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Content(big.ID); err != nil {
		t.Fatalf("content gone with an entry left: %v", err)
	}
	if err := s.Remove(entries[1]); err != nil {
		t.Fatal(err)
	}
	if got := files(); len(got) != 0 {
		t.Fatalf("content files after the last removal = %v", got)
	}
	if _, err := s.Content(big.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Content after the last removal = %v, want ErrNotFound", err)
	}
}
