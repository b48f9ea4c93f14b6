package event

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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
type Log struct {
	mu      sync.Mutex
	w       *bufio.Writer
	f       io.WriteCloser
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

// OpenLog opens (appending) or creates the file at path. Write failures are
// logged to log; nil means slog.Default().
func OpenLog(path string, log *slog.Logger) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	return NewLog(f, log), nil
}

// NewLog writes to w, which it closes on Close. Write failures are logged to
// log; nil means slog.Default().
func NewLog(w io.WriteCloser, log *slog.Logger) *Log {
	if log == nil {
		log = slog.Default()
	}
	l := &Log{
		w:    bufio.NewWriterSize(w, 64<<10),
		f:    w,
		log:  log,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	l.enc = json.NewEncoder(l.w)
	go l.flusher()
	return l
}

// Emit appends e as one JSON line.
func (l *Log) Emit(e *Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
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
		if _, err := l.f.Write([]byte{'\n'}); err != nil {
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
	l.w.Reset(l.f)
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
