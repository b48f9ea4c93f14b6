package queue

import "context"

// connSlots bounds the outbound connections the whole queue holds open,
// whatever the number of lanes: ten thousand ready lanes must not mean ten
// thousand sockets. Critical mail has a reserve of its own on top, so a
// queue at its cap still sends it at once.
type connSlots struct {
	normal   chan struct{}
	critical chan struct{}
}

// newConnSlots makes n slots for all mail and n/10 (at least one) more
// for the reserved runners of critical mail.
func newConnSlots(n int) *connSlots {
	return &connSlots{normal: make(chan struct{}, n), critical: make(chan struct{}, max(1, n/10))}
}

// tryAcquire takes a slot if one is free now, from the reserve too for
// critical mail; it returns nil when none is.
func (s *connSlots) tryAcquire(critical bool) (release func(), fromReserve bool) {
	select {
	case s.normal <- struct{}{}:
		return func() { <-s.normal }, false
	default:
	}
	if critical {
		select {
		case s.critical <- struct{}{}:
			return func() { <-s.critical }, true
		default:
		}
	}
	return nil, false
}

// acquire takes a slot, waiting for one until ctx ends; critical mail
// takes one of the critical reserve when all others are busy, and waits
// for either. It returns the function that gives the slot back (nil when
// ctx ended first) and whether the slot is from the reserve: a connection
// on it must carry critical mail only.
func (s *connSlots) acquire(ctx context.Context, critical bool) (release func(), fromReserve bool) {
	if release, fromReserve := s.tryAcquire(critical); release != nil {
		return release, fromReserve
	}
	reserve := s.critical
	if !critical {
		reserve = nil // a nil channel is never ready
	}
	select {
	case s.normal <- struct{}{}:
		return func() { <-s.normal }, false
	case reserve <- struct{}{}:
		return func() { <-s.critical }, true
	case <-ctx.Done():
		return nil, false
	}
}

// inUse returns how many slots are taken.
func (s *connSlots) inUse() int { return len(s.normal) + len(s.critical) }
