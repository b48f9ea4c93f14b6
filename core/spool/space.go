package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNoSpace is returned, wrapped, by writes refused because the spool's
// filesystem is below its free-space reserve. Nothing was written: the
// caller may try the same write again once space returns. Ingest answers it
// with 452 4.3.1.
var ErrNoSpace = errors.New("spool: insufficient storage")

// DefaultMinFree is the free-space reserve on a filesystem of 1 GiB or more.
const DefaultMinFree = 256 << 20

// ballastName is the file in the spool directory that holds back room for
// settlements; Pebble ignores files whose names it does not know.
const ballastName = "corriere-ballast"

// spaceCheckInterval is the default of Options.SpaceCheckInterval.
const spaceCheckInterval = time.Second

// FreeSpace returns the bytes available to an unprivileged writer on the
// filesystem holding path, and its total size, from statfs(2).
func FreeSpace(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("spool: statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// space keeps the spool's filesystem from filling up to the point where
// Pebble fails a write: Pebble treats a failed WAL or MANIFEST write as
// fatal, so the spool refuses writes before the disk is full instead.
//
// Three levels protect it. New messages need minFree bytes left after them.
// Settlements (deliveries, deferrals, bounces and their DSNs) need only
// floor bytes, so that delivering continues under the reserve and frees
// space. And a ballast file of ballastSize bytes, kept while space allows,
// is deleted when something else fills the disk below the floor, which
// gives settlements and Pebble's flushes room to finish.
type space struct {
	dir         string
	stat        func(path string) (free, total uint64, err error)
	log         *slog.Logger
	minFree     uint64
	floor       uint64
	ballastSize uint64

	free     atomic.Uint64 // the last reading
	inflight atomic.Uint64 // bytes of admitted messages not yet committed

	mu         sync.Mutex // orders the ballast's removal and re-creation
	ballast    bool
	lowLogged  time.Time
	statFailed bool

	// low, when set, is called every reading under the reserve.
	low func()

	stop chan struct{}
	done chan struct{}
}

// newSpace measures dir's filesystem and sizes the reserves: minFree as
// given, or DefaultMinFree capped at a quarter of the filesystem; the
// ballast a quarter of minFree and the settlement floor an eighth. A
// quarter of a small disk keeps it useful while leaving room for a flush
// of the memtable, which Open sizes below the reserve.
func newSpace(dir string, minFree uint64, stat func(string) (uint64, uint64, error), log *slog.Logger) (*space, error) {
	if stat == nil {
		stat = FreeSpace
	}
	free, total, err := stat(dir)
	if err != nil {
		return nil, err
	}
	if minFree == 0 {
		minFree = min(DefaultMinFree, total/4)
	}
	sp := &space{
		dir: dir, stat: stat, log: log,
		minFree: minFree, floor: minFree / 8, ballastSize: minFree / 4,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	sp.free.Store(free)
	if _, err := os.Stat(sp.ballastPath()); err == nil {
		sp.ballast = true
	}
	sp.tend()
	return sp, nil
}

func (sp *space) ballastPath() string { return filepath.Join(sp.dir, ballastName) }

// run refreshes the reading and tends the ballast every interval until
// close.
func (sp *space) run(every time.Duration) {
	defer close(sp.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sp.tend()
		case <-sp.stop:
			return
		}
	}
}

func (sp *space) close() {
	close(sp.stop)
	<-sp.done
}

// refresh reads the free space. A failed reading keeps the last one and is
// logged once until a reading succeeds again.
func (sp *space) refresh() uint64 {
	free, _, err := sp.stat(sp.dir)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err != nil {
		if !sp.statFailed {
			sp.log.Error("spool: cannot read the free space; keeping the last reading", "err", err)
		}
		sp.statFailed = true
		return sp.free.Load()
	}
	sp.statFailed = false
	sp.free.Store(free)
	return free
}

// tend refreshes the reading, gives up the ballast below the floor and
// makes it again when the reserve and the ballast both fit.
func (sp *space) tend() {
	free := sp.refresh()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	switch {
	case sp.ballast && free < sp.floor:
		if err := os.Remove(sp.ballastPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			sp.log.Error("spool: cannot remove the ballast file", "err", err)
			return
		}
		sp.ballast = false
		sp.log.Warn("spool: disk almost full; ballast released for settlements",
			"free", free, "ballast", sp.ballastSize, "min_free", sp.minFree)
		if free, _, err := sp.stat(sp.dir); err == nil {
			sp.free.Store(free)
		}
	case !sp.ballast && sp.ballastSize > 0 && free >= sp.minFree+sp.ballastSize+sp.inflight.Load():
		if err := writeBallast(sp.ballastPath(), sp.ballastSize); err != nil {
			sp.log.Error("spool: cannot create the ballast file", "err", err)
			return
		}
		sp.ballast = true
		if free, _, err := sp.stat(sp.dir); err == nil {
			sp.free.Store(free)
		}
	}
	if free < sp.minFree && sp.low != nil {
		sp.low()
	}
	if free < sp.minFree && time.Since(sp.lowLogged) >= time.Minute {
		sp.lowLogged = time.Now()
		sp.log.Warn("spool: free space under the reserve; new messages are refused with 452 until it returns",
			"free", free, "min_free", sp.minFree)
	}
}

// writeBallast writes size bytes of zeros to path and syncs them, so that
// the blocks are really taken (a sparse file would hold nothing back).
func writeBallast(path string, size uint64) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: ballast: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	chunk := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, uint64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			return fmt.Errorf("spool: ballast: %w", err)
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool: ballast: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: ballast: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("spool: ballast: %w", err)
	}
	return nil
}

// room reports whether a new message would leave the reserve free, from
// the last reading.
func (sp *space) room() error {
	if free := sp.free.Load(); free < sp.minFree+sp.inflight.Load() {
		return fmt.Errorf("%w: %d bytes free, %d reserved", ErrNoSpace, free, sp.minFree)
	}
	return nil
}

// admit reserves size bytes for a new message from a fresh reading, or
// returns ErrNoSpace; release gives them back once the message is written
// or abandoned.
func (sp *space) admit(size uint64) error {
	free := sp.refresh()
	if n := sp.inflight.Add(size); free < sp.minFree+n {
		sp.inflight.Add(-size)
		return fmt.Errorf("%w: %d bytes free, %d needed with the reserve", ErrNoSpace, free, sp.minFree+n)
	}
	return nil
}

func (sp *space) release(size uint64) { sp.inflight.Add(-size) }

// settle reports whether a settlement may be written: the last reading
// must be above the floor.
func (sp *space) settle() error {
	if free := sp.free.Load(); free < sp.floor {
		return fmt.Errorf("%w: %d bytes free, under the %d kept for settlements", ErrNoSpace, free, sp.floor)
	}
	return nil
}

// Room returns an error wrapping ErrNoSpace when the spool's filesystem is
// under its free-space reserve, so that new messages would be refused. It
// reads a value refreshed every second and costs an atomic load.
func (s *Spool) Room() error { return s.space.room() }

// MinFree returns the free-space reserve in bytes.
func (s *Spool) MinFree() uint64 { return s.space.minFree }
