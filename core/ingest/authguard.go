package ingest

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"corriere/core/event"
	"corriere/core/reply"
	"corriere/core/tenant"
)

// AUTH is defended three ways against password guessing:
//
//   - failures are counted per client (an IPv4 address or an IPv6 /64) and
//     per user name; past a few, the client, or the user for the clients
//     that failed too, is locked out for a time that doubles with each
//     further failure, and AUTH is answered 454 4.7.0 without checking the
//     password, so guessing costs no CPU; a guesser spread over many
//     addresses gets about one guess per address;
//   - an unknown user costs a bcrypt comparison as a known one does, so
//     the time of a reply does not tell which tenant names exist, and
//     lockouts treat both alike;
//   - password checks run at most AuthConcurrency at a time, so guesses
//     cannot take the cores that handle messages.
//
// A credential checked correct in the last minutes (the auth cache) passes
// even during a lockout: an attacker cannot produce one, and a legitimate
// client sharing the attacker's address or user name keeps working.

// Replies of a throttled AUTH.
var (
	errAuthLocked = smtpErr(reply.New(454, "4.7.0", "Too many failed authentication attempts; try again later"))
	errAuthBusy   = smtpErr(reply.New(454, "4.7.0", "Authentication temporarily unavailable; try again later"))
)

// authGuardSize bounds the failure records kept per kind: beyond it,
// records are swept (at most once a second), and new clients or users go
// unrecorded until there is room (the concurrency bound still holds).
const authGuardSize = 100_000

// authGuard counts AUTH failures per client and per user and locks them
// out with exponential backoff.
type authGuard struct {
	perIP, perUser int
	base, max      time.Duration
	now            func() time.Time

	mu        sync.Mutex
	byIP      map[netip.Prefix]*failures
	byUser    map[string]*failures
	lastSweep time.Time
}

// failures is the record of one client or one user.
type failures struct {
	n     int
	last  time.Time
	until time.Time
}

// lockout is a lockout a failure started.
type lockout struct {
	kind  string // "ip" or "user"
	until time.Time
}

func newAuthGuard(o *Options) *authGuard {
	return &authGuard{
		perIP: o.AuthFailuresPerIP, perUser: o.AuthFailuresPerUser, base: o.AuthLockout, max: o.AuthMaxLockout, now: o.Now,
		byIP: map[netip.Prefix]*failures{}, byUser: map[string]*failures{},
	}
}

// userKey is the record key of a user name: case does not make a new user,
// and a long name does not make a big record.
func userKey(user string) string {
	const maxLen = 320
	if len(user) > maxLen {
		user = user[:maxLen]
	}
	return strings.ToLower(user)
}

// locked reports whether the client is locked out now, or the user is and
// the client has failed too. A client with no recent failure of its own is
// not locked out by the failures of others: otherwise anyone could lock a
// tenant out of its account by guessing its password.
func (g *authGuard) locked(ip netip.Prefix, user string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	ipf := g.byIP[ip]
	if ipf != nil && now.Before(ipf.until) {
		return true
	}
	if f := g.byUser[userKey(user)]; f != nil && now.Before(f.until) {
		return ipf != nil && ipf.n > 0 && now.Sub(ipf.last) <= g.max
	}
	return false
}

// fail records a failure of the client and the user, and returns the
// lockouts it started.
func (g *authGuard) fail(ip netip.Prefix, user string) []lockout {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if (len(g.byIP) > authGuardSize || len(g.byUser) > authGuardSize) && now.Sub(g.lastSweep) > time.Second {
		g.sweep(now)
	}
	var out []lockout
	if l, ok := record(g.byIP, ip, now, g.perIP, g.base, g.max); ok {
		out = append(out, lockout{kind: "ip", until: l})
	}
	if l, ok := record(g.byUser, userKey(user), now, g.perUser, g.base, g.max); ok {
		out = append(out, lockout{kind: "user", until: l})
	}
	return out
}

// record counts a failure of key and, from the limit-th failure on, locks
// it out for base, doubled for each failure past the limit, at most max.
// A record quiet for max starts over.
func record[K comparable](m map[K]*failures, key K, now time.Time, limit int, base, max time.Duration) (time.Time, bool) {
	f := m[key]
	if f == nil {
		if len(m) >= authGuardSize {
			return time.Time{}, false
		}
		f = &failures{}
		m[key] = f
	}
	if now.Sub(f.last) > max && !now.Before(f.until) {
		f.n = 0
	}
	f.n++
	f.last = now
	if f.n < limit {
		return time.Time{}, false
	}
	d := base
	for i := limit; i < f.n && d < max; i++ {
		d *= 2
	}
	f.until = now.Add(min(d, max))
	return f.until, true
}

// succeed forgets the user's failures: they were a typo, or guesses that
// did not find the password. The client's stay, so that a client with one
// valid account cannot reset its count while guessing another.
func (g *authGuard) succeed(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.byUser, userKey(user))
}

// sweep forgets the records that no longer lock out nor count.
func (g *authGuard) sweep(now time.Time) {
	g.lastSweep = now
	stale := func(f *failures) bool { return now.Sub(f.last) > g.max && !now.Before(f.until) }
	for k, f := range g.byIP {
		if stale(f) {
			delete(g.byIP, k)
		}
	}
	for k, f := range g.byUser {
		if stale(f) {
			delete(g.byUser, k)
		}
	}
}

// passwordChecker runs bcrypt comparisons, at most a few at once, and for
// unknown users too.
type passwordChecker struct {
	slots chan struct{}
	wait  time.Duration
}

func newPasswordChecker(concurrency int, wait time.Duration) *passwordChecker {
	return &passwordChecker{slots: make(chan struct{}, concurrency), wait: wait}
}

// errNoSlot says that no password check could start in time.
var errNoSlot = errors.New("ingest: no password check slot free")

// noTenant stands in for an unknown user (or a tenant without a usable
// hash): its hash has the cost `corriere rules passwd` uses, and matches
// no password anyone would try.
var noTenant = &tenant.Tenant{Name: "-", PasswordHash: "$2a$10$qLC8xDWIgdcKYW/ezy6UB.AkSukEO..OjFlPkiXta2FezoUWx4jzS"}

// check verifies pass for t, or, when t is nil or has no usable hash,
// spends the same time on noTenant's hash and fails.
func (p *passwordChecker) check(t *tenant.Tenant, pass string) error {
	timer := time.NewTimer(p.wait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-timer.C:
		return errNoSlot
	}
	defer func() { <-p.slots }()
	if t != nil && strings.HasPrefix(t.PasswordHash, "$2") {
		return t.CheckPassword(pass)
	}
	_ = noTenant.CheckPassword(pass) // only for the time it takes
	if t == nil {
		return errors.New("unknown tenant")
	}
	return fmt.Errorf("tenant %s: no usable bcrypt password hash", t.Name)
}

// lockedOut reports a lockout the failure of user from this session
// started: a warning, a counter, and an event per lockout.
func (se *session) lockedOut(user string, l lockout) {
	se.s.count("auth_lockout")
	se.s.log.Warn("authentication locked out", "client", se.ip.String(), "user", user, "locked", l.kind, "until", l.until)
	ev := &event.Event{Type: event.Rejected, Reason: "auth_lockout", Category: event.Category(l.kind), Until: l.until,
		Reply: fmt.Sprintf("%d %d.%d.%d %s", errAuthLocked.Code, errAuthLocked.EnhancedCode[0], errAuthLocked.EnhancedCode[1],
			errAuthLocked.EnhancedCode[2], errAuthLocked.Message)}
	if t, ok := se.s.opts.Tenants.Lookup(user); ok {
		ev.Tenant = t.Name
	}
	se.s.opts.Events.Emit(ev)
}
