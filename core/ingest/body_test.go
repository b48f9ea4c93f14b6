package ingest

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReadBodySpills checks that a message above the spill threshold, or
// above what the memory budget has left, is read whole through a file that
// is gone afterwards, that the budget holds at most its cap for it, and
// that bare line endings are found across read chunks.
func TestReadBodySpills(t *testing.T) {
	t.Parallel()
	line := strings.Repeat("x", 98) + "\r\n"
	for _, c := range []struct {
		name   string
		size   int
		budget int64
	}{
		{"small, in memory", 10 << 10, 4 << 20},
		{"above the threshold", 3 << 20, 4 << 20},
		{"above the budget", 3 << 20, 2 << 20},
		{"budget too small to hold even a small one", 64 << 10, 16 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := []byte(strings.Repeat(line, c.size/len(line)))
			b := newDataBudget(c.budget)
			got, err := readBody(bytes.NewReader(in), dir, b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.raw, in) {
				t.Fatalf("read %d bytes, differing from the %d sent", len(got.raw), len(in))
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("spill files left behind: %v", left)
			}
			// The message is held whole, or the whole budget for it.
			if want := min(c.budget, int64(len(in))); b.used != want {
				t.Fatalf("budget holds %d, want %d", b.used, want)
			}
			got.release()
			if b.used != 0 {
				t.Fatalf("budget holds %d after release", b.used)
			}
		})
	}

	// A bare LF just after a chunk boundary, in a spilled message.
	in := []byte(strings.Repeat(line, 2<<20/len(line)))
	in[readChunk*40] = '\n'
	b := newDataBudget(8 << 20)
	if _, err := readBody(bytes.NewReader(in), t.TempDir(), b); !errors.Is(err, errBareLF) {
		t.Fatalf("bare LF in a spilled message: %v", err)
	}
	if b.used != 0 {
		t.Fatalf("budget holds %d after a refused message", b.used)
	}
}
