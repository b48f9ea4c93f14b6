package policy

import "time"

// Warmup is the warm-up schedule of a new egress IP: how many messages it
// may send to each provider on each day since Start, doubling its way to
// full volume. After the last day of Daily the IP is warm and uncapped.
type Warmup struct {
	// Start is day 1 of the schedule (a UTC date).
	Start time.Time
	// Daily are the caps per provider for day 1, day 2, and so on.
	Daily []int
}

// Cap returns the cap per provider for the UTC day of now, which day of
// the schedule that is (1-based), and whether the IP is still warming up.
// Before Start the IP may send nothing.
func (w Warmup) Cap(now time.Time) (limit, day int, warming bool) {
	start := time.Date(w.Start.Year(), w.Start.Month(), w.Start.Day(), 0, 0, 0, 0, time.UTC)
	n := int(now.UTC().Sub(start).Hours()/24) + 1
	switch {
	case now.UTC().Before(start):
		return 0, 0, true
	case n > len(w.Daily):
		return 0, n, false
	}
	return w.Daily[n-1], n, true
}

// WarmupPolicy is implemented by policies that warm up new IPs. The core
// counts what each warming IP sends to each provider per UTC day (in the
// spool, so a restart does not reset it), tells Route which sources have
// reached today's cap (Delivery.Capped) so traffic moves to warm IPs, and
// never sends over a cap: a delivery routed to a capped IP waits for the
// next day.
type WarmupPolicy interface {
	// Warmups returns the schedules by source IP; it may change after a
	// policy reload.
	Warmups() map[string]Warmup
}
