package event

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"corriere/core/testlib"
)

// readEvents returns the message IDs of the events in the file at path, in
// order, failing the test on a line that is not one whole event.
func readEvents(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.MsgID == "" {
			t.Fatalf("%s: line %q is not a whole event: %v", filepath.Base(path), sc.Text(), err)
		}
		ids = append(ids, e.MsgID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLogRotation writes events from several goroutines to a log rotated
// by size on a real file: each file holds whole lines and stays near the
// size, no event is lost or written twice, and only Keep rotated files
// remain, the newest ones.
func TestLogRotation(t *testing.T) {
	const (
		perWriter = 500
		maxSize   = 4096
	)
	// With files deleted, one writer: which events survive is then known.
	tests := []struct {
		name          string
		writers, keep int
	}{
		{"every file kept", 4, 1000},
		{"oldest files deleted", 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			l, err := OpenRotatingLog(path, Rotation{MaxSize: maxSize, Keep: tt.keep}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range tt.writers {
				wg.Go(func() {
					for i := range perWriter {
						l.Emit(&Event{Type: Delivered, MsgID: fmt.Sprintf("w%d-%04d", w, i), Reason: "rotation test"})
					}
				})
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			// Newest first: events.jsonl, then .1, .2 ...
			files := []string{path}
			for i := 1; ; i++ {
				p := fmt.Sprintf("%s.%d", path, i)
				if _, err := os.Stat(p); err != nil {
					break
				}
				files = append(files, p)
			}
			if tt.keep < 1000 && len(files) != tt.keep+1 {
				t.Fatalf("%d files, want the current one and %d rotated", len(files), tt.keep)
			}
			if len(files) < 3 {
				t.Fatalf("only %d files: the log did not rotate", len(files))
			}
			seen := map[string]int{}
			var order []string
			for i := len(files) - 1; i >= 0; i-- {
				st, err := os.Stat(files[i])
				if err != nil {
					t.Fatal(err)
				}
				// The check runs before each event, counting what is
				// buffered: a file exceeds the size by one line at most
				// (about 100 bytes).
				if st.Size() > maxSize+200 {
					t.Errorf("%s holds %d bytes, want about %d", files[i], st.Size(), maxSize)
				}
				for _, id := range readEvents(t, files[i]) {
					seen[id]++
					order = append(order, id)
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("event %s written %d times", id, n)
				}
			}
			if tt.keep >= 1000 && len(seen) != tt.writers*perWriter {
				t.Fatalf("%d events in the files, want %d", len(seen), tt.writers*perWriter)
			}
			// Each writer's events are in order across the files, and
			// what was deleted is each writer's oldest.
			next := map[string]int{}
			for _, id := range order {
				var w, i int
				if _, err := fmt.Sscanf(id, "w%d-%d", &w, &i); err != nil {
					t.Fatal(err)
				}
				k := fmt.Sprint(w)
				if last, ok := next[k]; ok && i != last {
					t.Fatalf("writer %d: event %d follows %d", w, i, last-1)
				}
				next[k] = i + 1
			}
			for w := range tt.writers {
				if next[fmt.Sprint(w)] != perWriter {
					t.Errorf("writer %d: the newest event in the files is %d, want %d", w, next[fmt.Sprint(w)]-1, perWriter-1)
				}
			}
		})
	}
}

// TestLogReopen does what logrotate does: rename the file and ask the log
// to reopen, while events keep coming. The events before the reopen are in
// the renamed file, those after it in the new one, every line whole and
// none lost.
func TestLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	l, err := OpenLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var emitted int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.Emit(&Event{Type: Deferred, MsgID: fmt.Sprintf("m%06d", emitted)})
			emitted++
		}
	})
	const rotations = 5
	for i := range rotations {
		// Wait for some events in the current file, then move it away.
		testlib.WaitFor(t, "events in the current file", func() bool {
			st, err := os.Stat(path)
			return l.Flush() == nil && err == nil && st.Size() > 0
		})
		if err := os.Rename(path, fmt.Sprintf("%s.old%d", path, i)); err != nil {
			t.Fatal(err)
		}
		if err := l.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var all []string
	for i := range rotations {
		ids := readEvents(t, fmt.Sprintf("%s.old%d", path, i))
		if len(ids) == 0 {
			t.Errorf("renamed file %d is empty", i)
		}
		all = append(all, ids...)
	}
	all = append(all, readEvents(t, path)...)
	if len(all) != emitted {
		t.Fatalf("%d events in the files, want the %d emitted", len(all), emitted)
	}
	for i, id := range all {
		if want := fmt.Sprintf("m%06d", i); id != want {
			t.Fatalf("event %d is %s, want %s: lost, repeated or out of order", i, id, want)
		}
	}
}

// TestLogReopenWithoutPath: a Log writing to a stream has nothing to
// reopen, and says so by doing nothing.
func TestLogReopenWithoutPath(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := NewLog(w, nil)
	l.Emit(&Event{Type: Received, MsgID: "a"})
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Emit(&Event{Type: Received, MsgID: "b"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	var ids []string
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.MsgID)
	}
	if fmt.Sprint(ids) != "[a b]" {
		t.Fatalf("events on the stream: %v, want [a b]", ids)
	}
}
