package shape

import (
	"math"
	"sync"
	"time"

	"corriere/core/policy"
)

// Limiter enforces one set of policy.Limits rates.
type Limiter struct {
	mu      sync.Mutex
	limits  policy.Limits
	factor  float64 // slow-down multiplier in (0, 1]
	share   float64 // this node's share of a cluster-wide limit, in (0, 1]
	gcras   []gcra
	windows []window
}

type gcra struct {
	interval time.Duration // time between messages at the steady rate
	tau      time.Duration // how far ahead of schedule a burst may run
	tat      time.Time     // theoretical arrival time of the next message
	rate     float64       // limit per window, before the slow-down
	window   time.Duration
}

type window struct {
	length    time.Duration
	limit     float64
	start     time.Time // start of the current window
	cur, prev float64   // counts in the current and previous windows
}

// NewLimiter returns a limiter for l. A zero rate field means no limit of
// that kind.
func NewLimiter(l policy.Limits) *Limiter {
	lim := &Limiter{factor: 1, share: 1}
	lim.setLimits(l)
	return lim
}

// SetLimits changes the limits in place at now, keeping what has been used:
// a policy reload must neither grant a fresh burst nor reset the hour's
// volume. Equal limits keep the whole state. A changed per-second or
// per-minute rate keeps the messages sent ahead of schedule, now spaced at
// the new rate; per-hour and per-day windows keep their counts.
func (l *Limiter) SetLimits(pl policy.Limits, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl == l.limits {
		return
	}
	oldGCRAs := append([]gcra(nil), l.gcras...)
	oldWindows := append([]window(nil), l.windows...)
	l.setLimits(pl)
	for i := range l.gcras {
		g := &l.gcras[i]
		for _, o := range oldGCRAs {
			if o.window == g.window {
				g.carry(o, now)
			}
		}
	}
	for i := range l.windows {
		for _, o := range oldWindows {
			if o.length == l.windows[i].length {
				l.windows[i].start, l.windows[i].cur, l.windows[i].prev = o.start, o.cur, o.prev
			}
		}
	}
}

// carry takes over the allowance o had used at now: the messages it let
// through ahead of the steady rate count against g's burst as well.
func (g *gcra) carry(o gcra, now time.Time) {
	ahead := o.tat.Sub(now)
	if ahead <= 0 {
		return
	}
	used := float64(ahead) / float64(o.interval)
	g.tat = now.Add(time.Duration(used * float64(g.interval)))
}

func (l *Limiter) setLimits(pl policy.Limits) {
	l.limits = pl
	burst := pl.Burst
	if burst < 1 {
		burst = 1
	}
	l.gcras = l.gcras[:0]
	for _, r := range []struct {
		limit  float64
		window time.Duration
	}{{pl.PerSecond, time.Second}, {pl.PerMinute, time.Minute}} {
		if r.limit > 0 {
			l.gcras = append(l.gcras, gcra{rate: r.limit, window: r.window})
		}
	}
	l.windows = l.windows[:0]
	for _, r := range []struct {
		limit  float64
		window time.Duration
	}{{pl.PerHour, time.Hour}, {pl.PerDay, 24 * time.Hour}} {
		if r.limit > 0 {
			l.windows = append(l.windows, window{length: r.window, limit: r.limit})
		}
	}
	l.applyFactor(burst)
}

func (l *Limiter) applyFactor(burst int) {
	for i := range l.gcras {
		g := &l.gcras[i]
		rate := g.rate * l.factor * l.share
		g.interval = time.Duration(float64(g.window) / rate)
		b := math.Min(float64(burst), math.Max(1, rate))
		g.tau = time.Duration((b - 1) * float64(g.interval))
	}
}

// Limits returns the limits in force.
func (l *Limiter) Limits() policy.Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limits
}

// SetFactor sets the slow-down multiplier applied to every rate (1 is full
// speed); values outside (0, 1] are clamped.
func (l *Limiter) SetFactor(f float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.factor = math.Min(1, math.Max(0.01, f))
	l.applyFactor(max(l.limits.Burst, 1))
}

// SetShare sets the share of every limit this node may use on its own (1
// is all of it): a node of a cluster that cannot reach the shared counts
// keeps to limit ÷ live nodes. Values outside (0, 1] are clamped. The
// share is apart from the slow-down factor, which the receiver decides.
func (l *Limiter) SetShare(s float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.share = math.Min(1, math.Max(0.01, s))
	l.applyFactor(max(l.limits.Burst, 1))
}

// Factor returns the slow-down multiplier.
func (l *Limiter) Factor() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.factor
}

// Reserve takes one message's allowance if it is available at now and
// returns 0; otherwise it takes nothing and returns how long to wait before
// asking again. Only critical mail may use the CriticalReserve share of the
// per-hour and per-day volumes: other mail stops short of it, so a
// newsletter run can never leave a password reset waiting for the next hour.
func (l *Limiter) Reserve(now time.Time, critical bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	share := 1.0
	if !critical {
		share = 1 - math.Min(1, math.Max(0, l.limits.CriticalReserve))
	}
	var wait time.Duration
	for i := range l.gcras {
		g := &l.gcras[i]
		tat := g.tat
		if tat.Before(now) {
			tat = now
		}
		if allowAt := tat.Add(-g.tau); allowAt.After(now) {
			wait = max(wait, allowAt.Sub(now))
		}
	}
	for i := range l.windows {
		w := &l.windows[i]
		w.advance(now)
		if limit := w.limit * l.factor * l.share * share; w.estimate(now)+1 > limit {
			wait = max(wait, w.waitFor(now, limit))
		}
	}
	if wait > 0 {
		return wait
	}
	for i := range l.gcras {
		g := &l.gcras[i]
		if g.tat.Before(now) {
			g.tat = now
		}
		g.tat = g.tat.Add(g.interval)
	}
	for i := range l.windows {
		l.windows[i].cur++
	}
	return 0
}

// Cancel gives back the allowance the last Reserve at now took, when the
// message cannot go after all because another limiter (the provider's, when
// this is a lane's) said wait: a sender polling both must not use up one
// while the other holds it back.
func (l *Limiter) Cancel(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.gcras {
		g := &l.gcras[i]
		g.tat = g.tat.Add(-g.interval)
	}
	for i := range l.windows {
		w := &l.windows[i]
		w.advance(now)
		w.cur = math.Max(0, w.cur-1)
	}
}

// advance moves the window forward to contain now.
func (w *window) advance(now time.Time) {
	if w.start.IsZero() {
		w.start = now
		return
	}
	elapsed := now.Sub(w.start)
	switch {
	case elapsed < w.length:
	case elapsed < 2*w.length:
		w.prev, w.cur = w.cur, 0
		w.start = w.start.Add(w.length)
	default:
		w.prev, w.cur = 0, 0
		w.start = now
	}
}

// estimate is the count in the sliding window ending at now.
func (w *window) estimate(now time.Time) float64 {
	overlap := 1 - float64(now.Sub(w.start))/float64(w.length)
	return w.prev*overlap + w.cur
}

// waitFor returns how long until one more message fits under limit.
func (w *window) waitFor(now time.Time, limit float64) time.Duration {
	if w.cur+1 > limit {
		// Only the next window can make room.
		return w.start.Add(w.length).Sub(now) + time.Millisecond
	}
	// The previous window's weight must fall until prev*overlap+cur+1 <= limit.
	needOverlap := (limit - w.cur - 1) / w.prev
	at := w.start.Add(time.Duration((1 - needOverlap) * float64(w.length)))
	return max(at.Sub(now), time.Millisecond)
}
