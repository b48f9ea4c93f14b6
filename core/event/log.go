package event

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Log writes events as JSON lines to a file, buffered and flushed in the
// background so that Emit costs an encode and a memory copy.
type Log struct {
	mu     sync.Mutex
	w      *bufio.Writer
	f      io.WriteCloser
	enc    *json.Encoder
	err    error
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// FlushInterval is how often a Log writes its buffer to the file.
const FlushInterval = 200 * time.Millisecond

// OpenLog opens (appending) or creates the file at path.
func OpenLog(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	return NewLog(f), nil
}

// NewLog writes to w, which it closes on Close.
func NewLog(w io.WriteCloser) *Log {
	l := &Log{
		w:    bufio.NewWriterSize(w, 64<<10),
		f:    w,
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
	if l.closed || l.err != nil {
		return
	}
	if err := l.enc.Encode(e); err != nil {
		l.err = err
	}
}

// Err returns the first write error, if any; after one, events are dropped
// and the caller should alert.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Flush writes buffered events to the file.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	return l.err
}

func (l *Log) flusher() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = l.Flush() // a failure is kept in l.err and reported by Err
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
