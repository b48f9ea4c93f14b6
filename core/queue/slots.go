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

// acquire takes a slot, waiting for one until ctx ends; reserved runners
// (critical mail) take one of the critical reserve when all others are
// busy. It returns the function that gives the slot back, or nil when ctx
// ended first.
func (s *connSlots) acquire(ctx context.Context, reserved bool) (release func()) {
	select {
	case s.normal <- struct{}{}:
		return func() { <-s.normal }
	default:
	}
	if reserved {
		select {
		case s.critical <- struct{}{}:
			return func() { <-s.critical }
		default:
		}
	}
	select {
	case s.normal <- struct{}{}:
		return func() { <-s.normal }
	case <-ctx.Done():
		return nil
	}
}

// inUse returns how many slots are taken.
func (s *connSlots) inUse() int { return len(s.normal) + len(s.critical) }
