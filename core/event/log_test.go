package event

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLogFullDisk writes events to a file on a real, full filesystem: the
// events are dropped and counted without blocking, and writing resumes by
// itself once space returns, with every line of the file whole.
func TestLogFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })

	path := filepath.Join(dir, "events.jsonl")
	l, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	emit := func(n int, reason string) {
		for i := range n {
			l.Emit(&Event{Type: Delivered, MsgID: fmt.Sprintf("%s-%d", reason, i), Reason: reason})
		}
	}
	emit(10, "before")
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()

	emit(5000, "full") // more than the buffer holds: writes fail inside Emit
	if err := l.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk = %v, want ENOSPC", err)
	}
	if l.Dropped() == 0 {
		t.Fatal("no event counted as dropped on a full disk")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	emit(10, "after")
	if err := l.Flush(); err != nil {
		t.Fatalf("Flush once space returned: %v", err)
	}
	if l.Err() != nil {
		t.Fatalf("Err once writing works again: %v", l.Err())
	}

	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(rf)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue // the end of a line cut short by the full disk
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A line cut short is allowed; it must not swallow the next.
			continue
		}
		counts[e.Reason]++
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}
	if counts["before"] != 10 || counts["after"] != 10 {
		t.Fatalf("events in the file: %v, want 10 before and 10 after", counts)
	}
	// Events of a buffer written in part may be both in the file and
	// counted as dropped; none may be neither.
	if got := int64(counts["full"]) + l.Dropped(); got < 5000 {
		t.Fatalf("written %d + dropped %d = %d events of the full phase, want at least 5000", counts["full"], l.Dropped(), got)
	}
}
