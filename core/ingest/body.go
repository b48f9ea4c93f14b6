package ingest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// spillThreshold is the size above which a message being received goes to
// a temporary file instead of memory.
const spillThreshold = 1 << 20

// readChunk is how much of DATA is read at a time.
const readChunk = 32 << 10

// dataBudget caps the bytes of message data that sessions hold in memory
// at once (Options.DataMemory). A session reading DATA takes from it
// without waiting, and spills to a file when it cannot; a spilled message
// waits for its whole size (at most the budget) before it is loaded to be
// handled. Only spilled sessions, which hold nothing, ever wait, so the
// budget cannot deadlock.
type dataBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int64
	max  int64
}

func newDataBudget(max int64) *dataBudget {
	b := &dataBudget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// tryTake takes n bytes if they fit now.
func (b *dataBudget) tryTake(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// take waits until n bytes, capped at the budget, fit, takes them and
// returns how many it took.
func (b *dataBudget) take(n int64) int64 {
	n = min(n, b.max)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used+n > b.max {
		b.cond.Wait()
	}
	b.used += n
	return n
}

func (b *dataBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// body is a received message's data, held in memory until release.
type body struct {
	raw    []byte
	held   int64
	budget *dataBudget
}

func (b *body) release() {
	b.budget.give(b.held)
	b.held, b.raw = 0, nil
}

// readBody reads DATA, refusing any line ending other than CRLF. A message
// that outgrows spillThreshold, or the memory budget, is written to a
// temporary file in dir as it arrives; once complete it is loaded within
// the budget, so that many large messages arriving at once hold no more
// memory than the budget allows.
func readBody(r io.Reader, dir string, budget *dataBudget) (_ *body, err error) {
	var (
		mem    bytes.Buffer
		held   int64
		spill  *os.File
		size   int64
		check  crlfCheck
		buf    = make([]byte, readChunk)
		inFile = func() bool { return spill != nil }
	)
	defer func() {
		if spill != nil {
			spill.Close()
			os.Remove(spill.Name())
		}
		if err != nil {
			budget.give(held)
		}
	}()
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if err := check.scan(chunk); err != nil {
				return nil, err
			}
			size += int64(n)
			switch {
			case inFile():
				if _, err := spill.Write(chunk); err != nil {
					return nil, fmt.Errorf("ingest: spill DATA: %w", err)
				}
			case size <= spillThreshold && budget.tryTake(int64(n)):
				held += int64(n)
				mem.Write(chunk)
			default:
				if spill, err = os.CreateTemp(dir, "data-*"); err != nil {
					return nil, fmt.Errorf("ingest: spill DATA: %w", err)
				}
				if _, err := spill.Write(mem.Bytes()); err != nil {
					return nil, fmt.Errorf("ingest: spill DATA: %w", err)
				}
				if _, err := spill.Write(chunk); err != nil {
					return nil, fmt.Errorf("ingest: spill DATA: %w", err)
				}
				budget.give(held)
				held = 0
				mem = bytes.Buffer{}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if err := check.end(); err != nil {
		return nil, err
	}
	if !inFile() {
		return &body{raw: mem.Bytes(), held: held, budget: budget}, nil
	}
	held = budget.take(size)
	raw := make([]byte, size)
	if _, err := spill.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("ingest: load spilled DATA: %w", err)
	}
	return &body{raw: raw, held: held, budget: budget}, nil
}

// crlfCheck finds a bare CR or LF, or a NUL (which relays and mail stores
// mishandle: RFC 5322 forbids it), across the chunks of a stream.
type crlfCheck struct {
	prevCR bool // the last byte seen was CR
}

func (c *crlfCheck) scan(p []byte) error {
	for _, b := range p {
		switch {
		case c.prevCR && b != '\n':
			return errBareLF
		case b == '\n' && !c.prevCR:
			return errBareLF
		case b == 0:
			return errNUL
		}
		c.prevCR = b == '\r'
	}
	return nil
}

func (c *crlfCheck) end() error {
	if c.prevCR {
		return errBareLF
	}
	return nil
}
