package spool

import "time"

// CommitObserver receives the duration of every committed batch, and
// whether the commit waited for the data to be on disk (sync). It is
// called on the committing goroutine and must return quickly.
type CommitObserver func(sync bool, d time.Duration)

// SetCommitObserver makes f receive the duration of every later commit;
// nil stops it. Metrics subscribe here after the spool is open.
func (s *Spool) SetCommitObserver(f CommitObserver) {
	if f == nil {
		s.commitObserver.Store(nil)
		return
	}
	s.commitObserver.Store(&f)
}

// observeCommit hands the duration of a commit started at start to the
// observer, if there is one.
func (s *Spool) observeCommit(sync bool, start time.Time) {
	if f := s.commitObserver.Load(); f != nil {
		(*f)(sync, time.Since(start))
	}
}
