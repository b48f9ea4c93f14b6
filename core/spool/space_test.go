package spool

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corriere/core/message"
	"corriere/core/testlib"
)

// spaceTimeout is how long the disk-full tests wait for space to come
// back: that waits for a reclaim, which compacts the spool and runs at most
// every reclaimEvery, so it can take longer than testlib.DefaultTimeout.
const spaceTimeout = 20 * time.Second

// smallDisk mounts a tmpfs of size bytes for the test, or skips it when the
// test cannot mount one (not root, no tmpfs).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root; the disk-full behaviour is then covered only with an injected free-space reading")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir that leaves about leave bytes free, and returns
// its path.
func fill(t *testing.T, dir string, leave uint64) string {
	t.Helper()
	free, _, err := FreeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free > leave {
		chunk := make([]byte, 4<<10)
		for left := free - leave; left > 0; {
			n := min(left, uint64(len(chunk)))
			if _, err := f.Write(chunk[:n]); err != nil {
				break // the disk is full, which is what we want
			}
			left -= n
		}
	}
	return path
}

func bigMessage(t *testing.T, size int, rcpt string) *message.Message {
	t.Helper()
	m := testMessage(t, rcpt)
	// Random text: Pebble compresses its tables, and a repeated line
	// would take no room at all.
	raw := make([]byte, size*3/4)
	rand.Read(raw)
	text := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	for len(text) > 76 {
		b.WriteString(text[:76] + "\r\n")
		text = text[76:]
	}
	m.Body = []byte(b.String())
	return m
}

// TestDiskFull fills a real 20 MB filesystem with the spool itself, then
// with another file, and checks that the spool refuses new messages with
// ErrNoSpace instead of letting Pebble fail (which panics), that
// settlements still commit, that space returns after deliveries, and that
// the spool opens again on a full disk.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, "20m")
	s, err := Open(Options{Dir: filepath.Join(dir, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if got := s.MinFree(); got != 5<<20 {
		t.Fatalf("MinFree = %d, want a quarter of 20 MiB", got)
	}

	// The queue fills the disk: Puts succeed until the reserve is reached.
	var entries []*Entry
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ {
		_, es, err := s.Put(bigMessage(t, 64<<10, "rcpt@example.org"), time.Now())
		if err != nil {
			refused = err
			break
		}
		entries = append(entries, es...)
	}
	if !errors.Is(refused, ErrNoSpace) {
		t.Fatalf("Put on a full spool: %v, want ErrNoSpace", refused)
	}
	if len(entries) < 50 {
		t.Fatalf("only %d messages of 64 KiB fit on a 20 MiB disk with a 5 MiB reserve", len(entries))
	}

	// Deliveries settle under the reserve, and free space again.
	for _, e := range entries {
		if err := s.Remove(e); err != nil {
			t.Fatalf("settle under the reserve: %v", err)
		}
	}
	testlib.WaitForWithin(t, spaceTimeout, "space to return after every message was delivered", func() bool { return s.Room() == nil })
	// Let Pebble finish freeing (the filler below must find a stable disk)
	// and the ballast come back.
	testlib.WaitForWithin(t, spaceTimeout, "the reclaim to finish", func() bool { return !s.reclaiming.Load() })
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	testlib.WaitForWithin(t, spaceTimeout, "the ballast to be made again", func() bool {
		_, err := os.Stat(filepath.Join(dir, "queue", ballastName))
		return err == nil && s.Room() == nil
	})
	if _, _, err := s.Put(bigMessage(t, 64<<10, "again@example.org"), time.Now()); err != nil {
		t.Fatalf("Put after space returned: %v", err)
	}

	// Another process fills the disk to the last byte: new messages are
	// refused and the ballast gives settlements room.
	filler := fill(t, dir, 0)
	testlib.WaitForWithin(t, spaceTimeout, "the ballast to be released", func() bool {
		if _, err := os.Stat(filepath.Join(dir, "queue", ballastName)); errors.Is(err, os.ErrNotExist) {
			return true
		}
		fill(t, dir, 0) // what Pebble deletes late is taken too
		return false
	})
	// The ballast may have gone between a look and a fill, which then took
	// its room: give that room back, as the other process would not have
	// been there to take it.
	if free, _, err := FreeSpace(dir); err == nil && free < s.space.floor {
		st, err := os.Stat(filler)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filler, st.Size()-int64(s.space.ballastSize)); err != nil {
			t.Fatal(err)
		}
		s.space.refresh()
	}
	if _, _, err := s.Put(testMessage(t, "full@example.org"), time.Now()); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Put on a full disk: %v, want ErrNoSpace", err)
	}
	var pending []*Entry
	if err := s.Scan(func(_ *Meta, es []*Entry) error { pending = append(pending, es...); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, e := range pending {
		if err := s.Remove(e); err != nil {
			t.Fatalf("settle on a full disk: %v", err)
		}
	}

	// Restart on the full disk.
	if err := s.Close(); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}
	if s, err = Open(Options{Dir: filepath.Join(dir, "queue")}); err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	if err := s.Room(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Room on a full disk = %v, want ErrNoSpace", err)
	}

	// Space returns: messages are accepted again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testlib.WaitForWithin(t, spaceTimeout, "Room after the filler is gone", func() bool { return s.Room() == nil })
	if _, _, err := s.Put(testMessage(t, "back@example.org"), time.Now()); err != nil {
		t.Fatalf("Put once space returned: %v", err)
	}
}

// TestReserveLevels checks, with an injected free-space reading, which
// writes each level of free space allows.
func TestReserveLevels(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	stat := func(string) (uint64, uint64, error) { return free.Load(), 1 << 40, nil }
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MinFree: 8 << 20, FreeSpace: stat})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, es, err := s.Put(testMessage(t, "a@example.org", "b@example.org"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name         string
		free         uint64
		put, settle  bool
		roomAtMAILOK bool
	}{
		{"plenty", 1 << 30, true, true, true},
		{"just above the reserve", 8<<20 + 64<<10, true, true, true},
		{"under the reserve", 4 << 20, false, true, false},
		{"under the settlement floor", 512 << 10, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			free.Store(c.free)
			s.space.refresh()
			if err := s.Room(); (err == nil) != c.roomAtMAILOK {
				t.Errorf("Room = %v", err)
			}
			_, _, err := s.Put(testMessage(t, "c@example.org"), time.Now())
			if (err == nil) != c.put || (err != nil && !errors.Is(err, ErrNoSpace)) {
				t.Errorf("Put = %v, want success %v", err, c.put)
			}
			e := *es[0]
			e.Attempts++
			err = s.Update(&e)
			if (err == nil) != c.settle || (err != nil && !errors.Is(err, ErrNoSpace)) {
				t.Errorf("Update = %v, want success %v", err, c.settle)
			}
		})
	}
	// A removal refused under the floor keeps the message's count, and
	// succeeds once space returns.
	free.Store(512 << 10)
	s.space.refresh()
	if err := s.Remove(es[0]); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Remove under the floor = %v", err)
	}
	if n := s.Remaining(es[0].MsgID); n != 2 {
		t.Fatalf("Remaining after a refused removal = %d, want 2", n)
	}
	free.Store(1 << 30)
	s.space.refresh()
	if err := s.Remove(es[0]); err != nil {
		t.Fatal(err)
	}
	if n := s.Remaining(es[0].MsgID); n != 1 {
		t.Fatalf("Remaining = %d, want 1", n)
	}
}
