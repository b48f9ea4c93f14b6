package event

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Log writes events as JSON lines to a file, buffered and flushed in the
// background so that Emit costs an encode and a memory copy.
//
// A write that fails (a full disk) never blocks or stops the node: the
// buffered events are dropped and counted, the failure is logged at most
// once a minute, and writing resumes by itself once the file takes data
// again. A line the failure cut short is ended before the next one.
//
// A Log opened on a path can rotate the file by size (see Rotation) and
// reopen it (Reopen, for logrotate). Both happen between two events, after
// the buffered lines are written to the old file: a line is never split
// between two files, and none is lost.
type Log struct {
	mu      sync.Mutex
	w       *bufio.Writer
	f       io.WriteCloser
	path    string   // "" for a writer that cannot be reopened
	rot     Rotation // rotation by size when rot.MaxSize > 0
	size    int64    // bytes written to the current file
	enc     *json.Encoder
	log     *slog.Logger
	err     error // the last write error; nil once a write succeeds
	pending int64 // events in the buffer
	dropped int64 // events lost to write errors
	torn    bool  // a failed write may have left part of a line
	logged  time.Time
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

// FlushInterval is how often a Log writes its buffer to the file.
const FlushInterval = 200 * time.Millisecond

// failureLogEvery is the shortest interval between two logged failures.
const failureLogEvery = time.Minute

// Rotation says when a Log rotates its file: once the file holds MaxSize
// bytes, events.jsonl is renamed events.jsonl.1 (the previous .1 becoming
// .2, and so on) and a new events.jsonl is started; the file past Keep is
// deleted. The check runs before each event, so a file may exceed MaxSize
// by one event at most.
type Rotation struct {
	// MaxSize is the size, in bytes, that rotates the file; 0 never
	// rotates.
	MaxSize int64
	// Keep is how many rotated files are kept. The default value is 5.
	Keep int
}

// OpenLog opens (appending) or creates the file at path, never rotating
// it. Write failures are logged to log; nil means slog.Default().
func OpenLog(path string, log *slog.Logger) (*Log, error) {
	return OpenRotatingLog(path, Rotation{}, log)
}

// OpenRotatingLog opens (appending) or creates the file at path, rotating
// it as rot says. Write failures are logged to log; nil means
// slog.Default().
func OpenRotatingLog(path string, rot Rotation, log *slog.Logger) (*Log, error) {
	if rot.MaxSize < 0 || rot.Keep < 0 {
		return nil, fmt.Errorf("event log: rotation of %s: negative size %d or count %d", path, rot.MaxSize, rot.Keep)
	}
	if rot.Keep == 0 {
		rot.Keep = 5
	}
	f, size, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	l := NewLog(f, log)
	l.path, l.rot, l.size = path, rot, size
	return l, nil
}

// openAppend opens or creates path for appending and returns its size.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("event log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("event log: %w", err)
	}
	return f, st.Size(), nil
}

// NewLog writes to w, which it closes on Close; it neither rotates nor
// reopens. Write failures are logged to log; nil means slog.Default().
func NewLog(w io.WriteCloser, log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	l := &Log{
		f:    w,
		log:  log,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	l.w = bufio.NewWriterSize(counter{l}, 64<<10)
	l.enc = json.NewEncoder(l.w)
	go l.flusher()
	return l
}

// counter writes to the log's current file and counts the bytes written,
// for rotation. It is used with l.mu held.
type counter struct{ l *Log }

func (c counter) Write(p []byte) (int, error) {
	n, err := c.l.f.Write(p)
	c.l.size += int64(n)
	return n, err
}

// Emit appends e as one JSON line.
func (l *Log) Emit(e *Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.rot.MaxSize > 0 && l.size+int64(l.w.Buffered()) >= l.rot.MaxSize {
		l.rotateLocked()
	}
	if l.torn && l.flushLocked() != nil {
		l.dropped++
		return
	}
	l.pending++
	if err := l.enc.Encode(e); err != nil {
		l.fail(err)
	}
}

// Err returns the last write error, or nil when the last write succeeded.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Dropped returns how many events were lost to write errors.
func (l *Log) Dropped() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// Flush writes buffered events to the file.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	return l.flushLocked()
}

func (l *Log) flushLocked() error {
	if l.torn {
		if _, err := (counter{l}).Write([]byte{'\n'}); err != nil {
			l.fail(err)
			return l.err
		}
		l.torn = false
	}
	if err := l.w.Flush(); err != nil {
		l.fail(err)
		return l.err
	}
	l.pending = 0
	if l.err != nil {
		l.log.Info("event log: writing again", "dropped_events", l.dropped)
		l.err = nil
	}
	return nil
}

// fail drops the buffered events after a write error: the buffer and the
// encoder keep an error forever once a write fails, so both start afresh.
// Events of a buffer written in part are counted as dropped, though some
// of them may have reached the file.
func (l *Log) fail(err error) {
	l.dropped += l.pending
	l.pending = 0
	l.w.Reset(counter{l})
	l.enc = json.NewEncoder(l.w)
	l.torn = true
	if l.err == nil || time.Since(l.logged) >= failureLogEvery {
		l.logged = time.Now()
		l.log.Error("event log: cannot write; dropping events until it can", "err", err, "dropped_events", l.dropped)
	}
	l.err = fmt.Errorf("event log: %w", err)
}

func (l *Log) flusher() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = l.Flush() // a failure is counted, logged and kept in l.err
		case <-l.stop:
			return
		}
	}
}

// Close flushes and closes the file.
func (l *Log) Close() error {
	close(l.stop)
	<-l.done
	ferr := l.Flush()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if err := l.f.Close(); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

// Reopen writes the buffered events to the current file, then closes it
// and opens the path again, which may name a new file: logrotate renames
// the log and sends SIGUSR1, and the events after it go to the new file.
// A Log made by NewLog has no path and ignores Reopen. When the path cannot
// be opened, events keep going to the old file.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.path == "" {
		return nil
	}
	f, size, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.switchLocked(f, size)
	return nil
}

// rotateLocked renames the file and its older rotations one step up and
// starts a new file. When the buffered events cannot be written, it does
// not rotate: they would be lost from the old file's end. A failed rename
// is logged, and the file grows another MaxSize before the next try.
func (l *Log) rotateLocked() {
	if l.flushLocked() != nil {
		return
	}
	if err := l.shiftFiles(); err != nil {
		l.size = 0
		l.log.Error("event log: cannot rotate; writing on", "path", l.path, "err", err)
		return
	}
	f, _, err := openAppend(l.path)
	if err != nil {
		// The old file, now path.1, takes the events until the next try.
		l.size = 0
		l.log.Error("event log: cannot start a new file after rotation; writing on in the old one", "path", l.path, "err", err)
		return
	}
	l.switchLocked(f, 0)
}

// shiftFiles renames path.N to path.N+1, from the oldest, and path to
// path.1, deleting the file past Keep. Rotated files missing in the
// sequence (deleted by hand) are skipped.
func (l *Log) shiftFiles() error {
	rotated := func(i int) string { return fmt.Sprintf("%s.%d", l.path, i) }
	if err := os.Remove(rotated(l.rot.Keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("event log: %w", err)
	}
	for i := l.rot.Keep - 1; i >= 1; i-- {
		if err := os.Rename(rotated(i), rotated(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("event log: %w", err)
		}
	}
	if err := os.Rename(l.path, rotated(1)); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}

// switchLocked writes the buffered events to the current file and makes f,
// holding size bytes, the current file. Events that cannot be written to
// the old file are dropped and counted, as any failed write.
func (l *Log) switchLocked(f io.WriteCloser, size int64) {
	_ = l.flushLocked() // a failure is counted, logged and kept in l.err
	if err := l.f.Close(); err != nil {
		l.log.Error("event log: closing the previous file", "path", l.path, "err", err)
	}
	l.f, l.size, l.torn = f, size, false
	l.w.Reset(counter{l})
	l.enc = json.NewEncoder(l.w)
}
