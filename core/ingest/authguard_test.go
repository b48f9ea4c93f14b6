package ingest

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"corriere/core/event"
	"corriere/core/event/eventtest"
	"corriere/core/tenant"
)

func TestAuthGuardBackoff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1e9, 0)
	g := newAuthGuard(&Options{AuthFailuresPerIP: 3, AuthFailuresPerUser: 100, AuthLockout: time.Second,
		AuthMaxLockout: 8 * time.Second, Now: func() time.Time { return now }})
	ip := netip.MustParsePrefix("192.0.2.1/32")
	// The lockout each failure starts: none for the first two, then
	// doubling up to the maximum.
	for i, want := range []time.Duration{0, 0, 1, 2, 4, 8, 8} {
		want *= time.Second
		ls := g.fail(ip, "acme")
		switch {
		case want == 0 && len(ls) != 0:
			t.Fatalf("failure %d started %+v, want no lockout", i+1, ls)
		case want != 0 && (len(ls) != 1 || ls[0].kind != "ip" || ls[0].until != now.Add(want)):
			t.Fatalf("failure %d started %+v, want an ip lockout of %s", i+1, ls, want)
		}
		if want == 0 {
			continue
		}
		if !g.locked(ip, "someone") {
			t.Fatalf("after failure %d the client is not locked out", i+1)
		}
		if g.locked(netip.MustParsePrefix("192.0.2.2/32"), "acme") {
			t.Fatalf("after failure %d another client is locked out", i+1)
		}
		now = now.Add(want)
		if g.locked(ip, "someone") {
			t.Fatalf("the lockout of failure %d outlasts %s", i+1, want)
		}
	}
	// Failures quiet for the maximum lockout are forgotten.
	now = now.Add(9 * time.Second)
	if ls := g.fail(ip, "acme"); len(ls) != 0 {
		t.Errorf("a failure after a long quiet started %+v", ls)
	}
}

func TestAuthGuardUserFailuresForgottenOnSuccess(t *testing.T) {
	t.Parallel()
	now := time.Unix(1e9, 0)
	g := newAuthGuard(&Options{AuthFailuresPerIP: 100, AuthFailuresPerUser: 2, AuthLockout: time.Minute,
		AuthMaxLockout: time.Hour, Now: func() time.Time { return now }})
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	g.fail(a, "Acme")
	g.succeed("acme")
	if ls := g.fail(b, "ACME"); len(ls) != 0 {
		t.Fatalf("a failure after a success started %+v", ls)
	}
	if ls := g.fail(a, "acme"); len(ls) != 1 || ls[0].kind != "user" {
		t.Fatalf("the second failure of the user from two clients started %+v, want a user lockout", ls)
	}
	if !g.locked(a, "aCmE") || !g.locked(b, "acme") {
		t.Error("the user is not locked out for the clients that failed")
	}
	c := netip.MustParsePrefix("192.0.2.3/32")
	if g.locked(c, "acme") {
		t.Error("the user is locked out for a client that never failed")
	}
	g.fail(c, "other")
	if !g.locked(c, "acme") {
		t.Error("the user is not locked out for a client that failed with another user")
	}
}

func TestPasswordChecksAreBounded(t *testing.T) {
	t.Parallel()
	p := newPasswordChecker(1, 50*time.Millisecond)
	p.slots <- struct{}{} // a check in progress
	if err := p.check(nil, "guess"); err != errNoSlot {
		t.Fatalf("check with every slot taken = %v, want errNoSlot", err)
	}
	<-p.slots
	if err := p.check(nil, "guess"); err == nil || err == errNoSlot {
		t.Fatalf("check for an unknown user = %v, want a failure", err)
	}
}

func plainAuth(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// authFrom opens a session from the loopback address from and tries one
// AUTH PLAIN; it returns the reply.
func authFrom(t *testing.T, addr, from, user, pass string) string {
	t.Helper()
	c, r, _ := dialFrom(t, addr, from)
	defer c.Close()
	send(t, c, r, "EHLO client.example")
	return send(t, c, r, plainAuth(user, pass))
}

func TestAuthLockoutPerClient(t *testing.T) {
	t.Parallel()
	rec := &eventtest.Recorder{}
	s, addr, _, _ := startServer(t, serverSetup{insecureAuth: true, events: rec.Bus(), tune: func(o *Options) {
		o.AuthFailuresPerIP, o.AuthFailuresPerUser, o.AuthLockout = 2, 100, time.Minute
	}})
	if got := authFrom(t, addr, "127.0.0.1", "acme", "secret"); !strings.HasPrefix(got, "235") {
		t.Fatalf("first AUTH got %q", got)
	}
	for range 2 {
		if got := authFrom(t, addr, "127.0.0.1", "acme", "wrong"); !strings.HasPrefix(got, "535 5.7.8") {
			t.Fatalf("wrong password got %q, want 535 5.7.8", got)
		}
	}
	// Locked out: even a right password is not checked...
	if got := authFrom(t, addr, "127.0.0.1", "relaxed", "secret"); !strings.HasPrefix(got, "454 4.7.0") {
		t.Fatalf("AUTH from a locked-out client got %q, want 454 4.7.0", got)
	}
	// ...unless it was checked right a moment ago,
	if got := authFrom(t, addr, "127.0.0.1", "acme", "secret"); !strings.HasPrefix(got, "235") {
		t.Fatalf("a credential checked before got %q, want 235", got)
	}
	// and other clients are not locked out.
	if got := authFrom(t, addr, "127.0.0.2", "relaxed", "secret"); !strings.HasPrefix(got, "235") {
		t.Fatalf("another client got %q, want 235", got)
	}
	rj := s.Rejections()
	if rj["auth_lockout"] != 1 || rj["auth_locked"] != 1 {
		t.Errorf("rejections = %v, want one auth_lockout and one auth_locked", rj)
	}
	evs := rec.Of(event.Rejected)
	if !slices.ContainsFunc(evs, func(e event.Event) bool {
		return e.Reason == "auth_lockout" && e.Category == "ip" && e.Tenant == "acme" && !e.Until.IsZero()
	}) {
		t.Errorf("no auth_lockout event among %+v", evs)
	}
}

func TestAuthLockoutPerUserAlikeForUnknownUsers(t *testing.T) {
	t.Parallel()
	for _, user := range []string{"acme", "nobody"} {
		t.Run(user, func(t *testing.T) {
			_, addr, _, _ := startServer(t, serverSetup{insecureAuth: true, tune: func(o *Options) {
				o.AuthFailuresPerIP, o.AuthFailuresPerUser, o.AuthLockout = 100, 2, time.Minute
			}})
			// Two clients fail: the user is locked out for them, and for a
			// third once it fails too.
			var got []string
			for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.3"} {
				got = append(got, authFrom(t, addr, from, user, "wrong"))
			}
			want := []string{"535 5.7.8", "535 5.7.8", "454 4.7.0", "535 5.7.8", "454 4.7.0"}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Fatalf("replies %q; want %q", got, want)
				}
			}
			// A client that never failed is not locked out by the others.
			if user == "acme" {
				if got := authFrom(t, addr, "127.0.0.4", "acme", "secret"); !strings.HasPrefix(got, "235") {
					t.Errorf("a client that never failed got %q, want 235", got)
				}
			}
		})
	}
}

// TestUnknownUserCostsAHash compares the time AUTH takes for an unknown
// user with a wrong password for a known one (hashed at bcrypt's default
// cost): they must be of the same order, or replies tell which tenant
// names exist. The margin is wide; both sides slow down alike on a busy
// machine.
func TestUnknownUserCostsAHash(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	_, addr, _, _ := startServer(t, serverSetup{insecureAuth: true, tune: func(o *Options) {
		o.Tenants = tenant.Static{"known": {Name: "known", PasswordHash: string(h)}}
		o.AuthFailuresPerIP, o.AuthFailuresPerUser = 100, 100
	}})
	fastest := func(user string) time.Duration {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		readReply(r)
		send(t, c, r, "EHLO client.example")
		best := time.Hour
		for range 2 { // a third failure ends the session
			start := time.Now()
			if got := send(t, c, r, plainAuth(user, "wrong")); !strings.HasPrefix(got, "535") {
				t.Fatalf("AUTH %s got %q", user, got)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := fastest("known"), fastest("nobody")
	if unknown < known/4 {
		t.Errorf("AUTH took %s for an unknown user, %s for a known one", unknown, known)
	}
}
