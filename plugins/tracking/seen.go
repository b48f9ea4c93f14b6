package tracking

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"corriere/core/event"
)

// SeenFile is the name of the file, in the spool directory, that keeps
// which recipients opened and clicked, so that a restart does not count
// them again.
const SeenFile = "tracking.seen"

// seenKey is what an open or click is deduplicated by.
type seenKey struct {
	typ         event.Type
	category    event.Category
	msgID, rcpt string
}

// seen remembers the first opens and clicks of each recipient, in memory
// and in an append-only file of one line per first event, compacted at
// each start.
type seen struct {
	mu     sync.Mutex
	m      map[seenKey]time.Time
	pruned time.Time
	file   *os.File
}

// open loads path, keeping the entries younger than window, writes them
// back compacted, and appends to it from then on.
func (s *seen) open(path string, window time.Duration, now time.Time) error {
	s.m = map[seenKey]time.Time{}
	f, err := os.Open(path)
	switch {
	case err == nil:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, at, ok := parseSeen(sc.Text())
			if ok && now.Sub(at) <= window {
				s.m[k] = at
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("tracking: %s: %w", path, err)
		}
	case !os.IsNotExist(err):
		return fmt.Errorf("tracking: %w", err)
	}
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	w := bufio.NewWriter(out)
	for k, at := range s.m {
		w.WriteString(formatSeen(k, at))
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return fmt.Errorf("tracking: %s: %w", tmp, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("tracking: %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	s.file, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	s.pruned = now
	return nil
}

// formatSeen is the file's line of k: time, type, category, message and
// recipient, separated by tabs.
func formatSeen(k seenKey, at time.Time) string {
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\n", at.Unix(), k.typ, k.category, k.msgID, k.rcpt)
}

// parseSeen reads a line formatSeen wrote.
func parseSeen(line string) (seenKey, time.Time, bool) {
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return seenKey{}, time.Time{}, false
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return seenKey{}, time.Time{}, false
	}
	return seenKey{typ: event.Type(f[1]), category: event.Category(f[2]), msgID: f[3], rcpt: f[4]}, time.Unix(sec, 0), true
}

// first records k at now and reports whether it is new within window. A
// line that cannot be written is returned as an error after the fact:
// the event still counts.
func (s *seen) first(k seenKey, now time.Time, window time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[seenKey]time.Time{}
	}
	if now.Sub(s.pruned) > time.Hour {
		for k, at := range s.m {
			if now.Sub(at) > window {
				delete(s.m, k)
			}
		}
		s.pruned = now
	}
	if at, ok := s.m[k]; ok && now.Sub(at) <= window {
		return false, nil
	}
	s.m[k] = now
	if s.file == nil || strings.ContainsAny(k.msgID+k.rcpt, "\t\n") {
		return true, nil
	}
	if _, err := s.file.WriteString(formatSeen(k, now)); err != nil {
		return true, fmt.Errorf("tracking: %s: %w", SeenFile, err)
	}
	return true, nil
}

// close closes the file.
func (s *seen) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
