package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/clock"
	"corriere/core/dns"
	"corriere/core/dns/authserver"
	"corriere/core/testlib"
)

// policyWorld is a DNS server and an HTTPS policy server on loopback for
// the domain secure.test.
type policyWorld struct {
	dns     *authserver.Server
	srv     *httptest.Server
	port    int
	body    atomic.Value // string
	fetches atomic.Int32
	opts    Options
}

func startPolicyWorld(t *testing.T, certHosts ...string) *policyWorld {
	t.Helper()
	w := &policyWorld{}
	w.body.Store("version: STSv1\nmode: enforce\nmx: mx.secure.test\nmax_age: 86400\n")
	cert, pool := testlib.Certificate(t, certHosts...)
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.fetches.Add(1)
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(rw, w.body.Load().(string))
	}))
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	_, port, _ := net.SplitHostPort(w.srv.Listener.Addr().String())
	w.port, _ = strconv.Atoi(port)

	as, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	as.MustAdd(
		`_mta-sts.secure.test. 0 IN TXT "v=STSv1; id=one"`,
		"mta-sts.secure.test. 60 IN A 127.0.0.1",
	)
	w.dns = as
	w.opts = Options{Resolver: w.resolver(t), RootCAs: pool, Port: w.port, FetchTimeout: 5 * time.Second}
	return w
}

// resolver returns a resolver of w with an empty cache, which sees the
// records as they are now.
func (w *policyWorld) resolver(t *testing.T) *dns.Resolver {
	t.Helper()
	r, err := dns.New(dns.Options{Servers: []string{w.dns.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCacheFetchPersistRefresh(t *testing.T) {
	w := startPolicyWorld(t, "mta-sts.secure.test")
	ctx := context.Background()
	fake := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	w.opts.Clock = fake
	w.opts.Path = filepath.Join(t.TempDir(), "mta-sts.json")
	c, err := New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Lookup(ctx, "secure.test")
	if err != nil || p == nil || p.Mode != Enforce || !p.Matches("mx.secure.test") {
		t.Fatalf("Lookup = %+v, %v; want the enforce policy", p, err)
	}
	if _, err := c.Lookup(ctx, "secure.test"); err != nil || w.fetches.Load() != 1 {
		t.Fatalf("second lookup: %v, %d fetches; want the cached policy and one fetch", err, w.fetches.Load())
	}

	// A restart reads the persisted policy: no fetch, even with the policy
	// server gone (an attacker blocking it cannot downgrade the domain).
	w.srv.Close()
	c2, err := New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c2.Lookup(ctx, "secure.test"); err != nil || p == nil || p.Mode != Enforce {
		t.Fatalf("after restart: Lookup = %+v, %v; want the persisted policy", p, err)
	}
	if w.fetches.Load() != 1 {
		t.Fatalf("%d fetches after restart, want 1", w.fetches.Load())
	}

	// A new id with the server unreachable: the cached policy stays in
	// force, and the failure is returned for the report.
	w.dns.Remove("_mta-sts.secure.test")
	w.dns.MustAdd(`_mta-sts.secure.test. 0 IN TXT "v=STSv1; id=two"`)
	c2.opts.Resolver = w.resolver(t)
	p, err = c2.Lookup(ctx, "secure.test")
	var fe *FetchError
	if p == nil || p.Mode != Enforce || !errors.As(err, &fe) || fe.Result != ResultFetchError {
		t.Fatalf("new id, server down: Lookup = %+v, %v; want the cached policy and a fetch error", p, err)
	}

	// Past max_age with no way to refetch, the policy is gone.
	fake.Advance(25 * time.Hour)
	c2.RefreshDue(ctx)
	if p, _ := c2.Lookup(ctx, "secure.test"); p != nil {
		t.Fatalf("after max_age: Lookup = %+v, want none", p)
	}
}

func TestCacheRefreshDue(t *testing.T) {
	w := startPolicyWorld(t, "mta-sts.secure.test")
	ctx := context.Background()
	fake := clock.NewFake(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	w.opts.Clock = fake
	c, err := New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Lookup(ctx, "secure.test"); err != nil || p == nil {
		t.Fatalf("Lookup = %+v, %v", p, err)
	}
	w.body.Store("version: STSv1\nmode: testing\nmx: mx.secure.test\nmax_age: 86400\n")
	c.RefreshDue(ctx)
	if w.fetches.Load() != 1 {
		t.Fatalf("%d fetches before half of max_age, want 1", w.fetches.Load())
	}
	fake.Advance(13 * time.Hour)
	c.RefreshDue(ctx)
	if p, err := c.Lookup(ctx, "secure.test"); err != nil || p == nil || p.Mode != Testing || w.fetches.Load() != 2 {
		t.Fatalf("after the background refresh: %+v, %v, %d fetches; want the new testing policy from a second fetch", p, err, w.fetches.Load())
	}
}

func TestFetchFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		certHost   string
		body       string
		wantResult string
	}{
		{"certificate for another name", "www.other.test", "version: STSv1\nmode: enforce\nmx: mx.secure.test\nmax_age: 60\n", ResultWebPKIInvalid},
		{"invalid policy", "mta-sts.secure.test", "version: STSv1\nmode: enforce\nmax_age: 60\n", ResultPolicyInvalid},
		{"too large", "mta-sts.secure.test", "version: STSv1\nmode: enforce\nmx: mx.secure.test\nmax_age: 60\n" + string(make([]byte, MaxPolicySize)), ResultPolicyInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startPolicyWorld(t, tc.certHost)
			w.body.Store(tc.body)
			c, err := New(w.opts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Lookup(ctx, "secure.test")
			var fe *FetchError
			if p != nil || !errors.As(err, &fe) || fe.Result != tc.wantResult {
				t.Fatalf("Lookup = %+v, %v; want no policy and %s", p, err, tc.wantResult)
			}
			// The failure is remembered: the next delivery does not refetch.
			n := w.fetches.Load()
			if _, err := c.Lookup(ctx, "secure.test"); err == nil || w.fetches.Load() != n {
				t.Fatalf("second lookup: %v, %d fetches (was %d); want the remembered failure", err, w.fetches.Load(), n)
			}
		})
	}
}

func TestNoRecordNoPolicy(t *testing.T) {
	w := startPolicyWorld(t, "mta-sts.secure.test")
	c, err := New(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Lookup(context.Background(), "plain.test"); p != nil || err != nil {
		t.Fatalf("Lookup = %+v, %v; want none", p, err)
	}
	if w.fetches.Load() != 0 {
		t.Fatal("fetched a policy for a domain without a record")
	}
}
