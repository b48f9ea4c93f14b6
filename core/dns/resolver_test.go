package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"corriere/core/testlib"
)

var mxRecords = []string{
	"pref.test. 300 IN MX 20 mx2.pref.test.",
	"pref.test. 300 IN MX 10 mx1.pref.test.",
	"pref.test. 300 IN MX 30 MX3.Pref.Test.",
	"equal.test. 300 IN MX 10 a.equal.test.",
	"equal.test. 300 IN MX 10 b.equal.test.",
	"equal.test. 300 IN MX 20 c.equal.test.",
	"dup.test. 300 IN MX 20 mx.dup.test.",
	"dup.test. 300 IN MX 10 MX.dup.test.",
	"implicit4.test. 300 IN A 127.0.0.10",
	"implicit6.test. 300 IN AAAA ::1",
	"noaddr.test. 300 IN TXT \"no mail here\"",
	"null.test. 300 IN MX 0 .",
	"nullmixed.test. 300 IN MX 0 .",
	"nullmixed.test. 300 IN MX 10 mx.nullmixed.test.",
	"alias.test. 300 IN CNAME Real.test.",
	"real.test. 300 IN MX 10 mx.real.test.",
	"aliasimplicit.test. 300 IN CNAME host.test.",
	"host.test. 300 IN A 127.0.0.11",
}

func TestLookupMX(t *testing.T) {
	as := startAuth(t, mxRecords...)
	r := newResolver(t, Options{}, as.Addr)
	tests := []struct {
		domain   string
		want     []MX
		implicit bool
		kind     Kind
		detail   string
	}{
		{domain: "pref.test", want: []MX{{"mx1.pref.test", 10}, {"mx2.pref.test", 20}, {"mx3.pref.test", 30}}},
		{domain: "PREF.test.", want: []MX{{"mx1.pref.test", 10}, {"mx2.pref.test", 20}, {"mx3.pref.test", 30}}},
		{domain: "dup.test", want: []MX{{"mx.dup.test", 10}}},
		{domain: "implicit4.test", want: []MX{{"implicit4.test", 0}}, implicit: true},
		{domain: "implicit6.test", want: []MX{{"implicit6.test", 0}}, implicit: true},
		{domain: "aliasimplicit.test", want: []MX{{"aliasimplicit.test", 0}}, implicit: true},
		{domain: "alias.test", want: []MX{{"mx.real.test", 10}}},
		{domain: "nullmixed.test", want: []MX{{"mx.nullmixed.test", 10}}},
		{domain: "noaddr.test", kind: NotFound, detail: "no MX, A or AAAA records (from " + as.Addr + ")"},
		{domain: "missing.test", kind: NotFound, detail: "domain does not exist (NXDOMAIN from " + as.Addr + ")"},
		{domain: "null.test", kind: NullMX, detail: "domain does not accept mail (null MX, RFC 7505)"},
		{domain: "bad..test", kind: NotFound, detail: "invalid domain name: empty label"},
		{domain: "", kind: NotFound, detail: "invalid domain name: empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			res, err := r.LookupMX(t.Context(), tt.domain)
			if tt.kind != 0 {
				var de *Error
				if !errors.As(err, &de) {
					t.Fatalf("LookupMX = %+v, %v; want *Error", res, err)
				}
				if de.Kind != tt.kind || de.Detail != tt.detail {
					t.Errorf("error %s %q, want %s %q", de.Kind, de.Detail, tt.kind, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantDomain := strings.ToLower(strings.TrimSuffix(tt.domain, "."))
			if res.Domain != wantDomain || !slices.Equal(res.Hosts, tt.want) || res.Implicit != tt.implicit {
				t.Errorf("LookupMX = %+v, want {%s %v %v}", res, wantDomain, tt.want, tt.implicit)
			}
		})
	}
}

func TestLookupMXShufflesEqualPreference(t *testing.T) {
	as := startAuth(t, mxRecords...)
	r := newResolver(t, Options{}, as.Addr)
	firsts := map[string]int{}
	for range 200 {
		res, err := r.LookupMX(t.Context(), "equal.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hosts) != 3 || res.Hosts[2] != (MX{"c.equal.test", 20}) {
			t.Fatalf("hosts %v: the preference 20 host must come last", res.Hosts)
		}
		firsts[res.Hosts[0].Host]++
	}
	if firsts["a.equal.test"] == 0 || firsts["b.equal.test"] == 0 {
		t.Errorf("first hosts over 200 lookups: %v; want both equal-preference hosts first sometimes", firsts)
	}
}

func TestLookupIP(t *testing.T) {
	as := startAuth(t,
		"both.test. 300 IN AAAA 2001:db8::1",
		"both.test. 300 IN A 127.0.0.1",
		"both.test. 300 IN A 127.0.0.2",
		"both.test. 300 IN AAAA 2001:db8::2",
		"v6.test. 300 IN AAAA 2001:db8::3",
		"cname.test. 300 IN CNAME both.test.",
		"txtonly.test. 300 IN TXT \"x\"",
	)
	r := newResolver(t, Options{}, as.Addr)
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	tests := []struct {
		host string
		want []netip.Addr
		kind Kind
	}{
		{host: "both.test", want: addrs("127.0.0.1", "127.0.0.2", "2001:db8::1", "2001:db8::2")},
		{host: "cname.test", want: addrs("127.0.0.1", "127.0.0.2", "2001:db8::1", "2001:db8::2")},
		{host: "v6.test", want: addrs("2001:db8::3")},
		{host: "192.0.2.7", want: addrs("192.0.2.7")},
		{host: "txtonly.test", kind: NotFound},
		{host: "missing.test", kind: NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := r.LookupIP(t.Context(), tt.host)
			if tt.kind != 0 {
				var de *Error
				if !errors.As(err, &de) || de.Kind != tt.kind {
					t.Fatalf("LookupIP = %v, %v; want kind %s", got, err, tt.kind)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("LookupIP = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestLookupTXTAndPTR(t *testing.T) {
	as := startAuth(t,
		`spf.test. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"`,
		`_dmarc.spf.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`spf.test. 300 IN MX 10 mx.spf.test.`,
		"10.0.0.127.in-addr.arpa. 300 IN PTR Mail.Example.ORG.",
		"10.0.0.127.in-addr.arpa. 300 IN PTR other.example.org.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR v6.example.org.",
	)
	r := newResolver(t, Options{}, as.Addr)
	txt := []struct {
		name string
		want []string
		err  string
	}{
		{name: "spf.test", want: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		{name: "_DMARC.spf.test", want: []string{"v=DMARC1; p=reject"}},
		{name: "mx.spf.test", err: "dns: mx.spf.test: domain does not exist (NXDOMAIN from " + as.Addr + ")"},
		{name: "_dmarc.spf.test.", want: []string{"v=DMARC1; p=reject"}},
	}
	for _, tt := range txt {
		got, err := r.LookupTXT(t.Context(), tt.name)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("LookupTXT(%s) = %q, %v; want error %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("LookupTXT(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := r.LookupTXT(t.Context(), "nodata.spf.test"); err == nil {
		t.Error("LookupTXT of a missing name succeeded")
	}
	var de *Error
	if _, err := r.LookupTXT(t.Context(), "10.0.0.127.in-addr.arpa"); !errors.As(err, &de) || de.Detail != "no TXT records (from "+as.Addr+")" {
		t.Errorf("LookupTXT of a name without TXT: %v", err)
	}

	ptr := []struct {
		ip   string
		want []string
	}{
		{ip: "127.0.0.10", want: []string{"mail.example.org", "other.example.org"}},
		{ip: "::ffff:127.0.0.10", want: []string{"mail.example.org", "other.example.org"}},
		{ip: "2001:db8::1", want: []string{"v6.example.org"}},
		{ip: "127.0.0.11"},
	}
	for _, tt := range ptr {
		got, err := r.LookupPTR(t.Context(), netip.MustParseAddr(tt.ip))
		if tt.want == nil {
			if !errors.As(err, &de) || de.Kind != NotFound {
				t.Errorf("LookupPTR(%s) = %q, %v; want NotFound", tt.ip, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("LookupPTR(%s) = %q, %v; want %q", tt.ip, got, err, tt.want)
		}
	}
	if _, err := r.LookupPTR(t.Context(), netip.Addr{}); !errors.As(err, &de) || de.Kind != NotFound {
		t.Errorf("LookupPTR of the zero Addr: %v", err)
	}
}

func TestTemporaryFailures(t *testing.T) {
	as := startAuth(t, "sf.test. 300 IN MX 10 mx.sf.test.", "drop.test. 300 IN MX 10 mx.drop.test.")
	as.SetServFail("sf.test", true)
	as.SetDrop("drop.test", true)
	r := newResolver(t, Options{Timeout: 200 * time.Millisecond}, as.Addr)

	tests := []struct {
		domain string
		detail string
	}{
		{"sf.test", "MX query failed: SERVFAIL from " + as.Addr},
		{"drop.test", "MX query failed: no reply from " + as.Addr + " over udp within 200ms"},
	}
	for _, tt := range tests {
		_, err := r.LookupMX(t.Context(), tt.domain)
		var de *Error
		if !errors.As(err, &de) || !de.Temporary() || de.Detail != tt.detail {
			t.Fatalf("LookupMX(%s) = %v; want Temporary %q", tt.domain, err, tt.detail)
		}
		if rep := de.Reply(); rep.Code != 451 || rep.Status.String() != "4.4.3" {
			t.Errorf("Reply() = %v, want 451 4.4.3", rep)
		}
	}

	// Temporary failures are not cached: the next lookup asks again.
	as.SetServFail("sf.test", false)
	res, err := r.LookupMX(t.Context(), "sf.test")
	if err != nil || len(res.Hosts) != 1 {
		t.Fatalf("after SERVFAIL cleared: %+v, %v", res, err)
	}
}

func TestCache(t *testing.T) {
	as := startAuth(t,
		"cached.test. 300 IN MX 10 mx.cached.test.",
		"short.test. 1 IN MX 10 mx.short.test.",
		"long.test. 2000000 IN MX 10 mx.long.test.",
		"chain.test. 30 IN CNAME target.test.",
		"target.test. 3000 IN MX 10 mx.target.test.",
		"nodata.test. 300 IN TXT \"x\"",
	)
	clk := newClock()
	r := newResolver(t, Options{Now: clk.Now}, as.Addr)

	// Each step looks domain up and expects the server to have been asked
	// `queries` times in total for it.
	type step struct {
		advance time.Duration
		queries int
	}
	tests := []struct {
		domain string
		steps  []step
	}{
		{"cached.test", []step{{0, 1}, {0, 1}, {299 * time.Second, 1}, {time.Second, 2}, {0, 2}}},
		{"short.test", []step{{0, 1}, {4 * time.Second, 1}, {time.Second, 2}}},
		{"long.test", []step{{0, 1}, {24*time.Hour - time.Second, 1}, {time.Second, 2}}},
		{"chain.test", []step{{0, 1}, {29 * time.Second, 1}, {time.Second, 2}}},
		{"missing.test", []step{{0, 1}, {59 * time.Second, 1}, {time.Second, 2}}},
		// NODATA for MX, then A and AAAA: three queries, cached 60s.
		{"nodata.test", []step{{0, 3}, {59 * time.Second, 3}, {time.Second, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			before := as.Queries()
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				_, _ = r.LookupMX(t.Context(), tt.domain) // errors are part of the cached answers
				if got := as.Queries() - before; got != s.queries {
					t.Fatalf("step %d: %d queries, want %d", i, got, s.queries)
				}
			}
		})
	}
	hits, misses := r.Stats()
	if hits == 0 || misses == 0 {
		t.Errorf("Stats() = %d hits, %d misses", hits, misses)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	as := startAuth(t, "a.test. 300 IN MX 1 mx.a.test.", "b.test. 300 IN MX 1 mx.b.test.", "c.test. 300 IN MX 1 mx.c.test.")
	r := newResolver(t, Options{MaxEntries: 2}, as.Addr)
	steps := []struct {
		domain string
		asked  bool
	}{
		{"a.test", true}, {"b.test", true}, {"a.test", false}, {"c.test", true},
		{"a.test", false}, {"b.test", true}, {"c.test", true},
	}
	for i, s := range steps {
		before := as.Queries()
		if _, err := r.LookupMX(t.Context(), s.domain); err != nil {
			t.Fatal(err)
		}
		if asked := as.Queries() > before; asked != s.asked {
			t.Errorf("step %d %s: asked the server %v, want %v", i, s.domain, asked, s.asked)
		}
	}
}

func TestServerFallback(t *testing.T) {
	as := startAuth(t, "fb.test. 300 IN MX 10 mx.fb.test.", "fb2.test. 300 IN MX 10 mx.fb2.test.")
	dead := deadServer(t)
	r := newResolver(t, Options{}, dead, as.Addr)
	for _, d := range []string{"fb.test", "fb2.test"} {
		res, err := r.LookupMX(t.Context(), d)
		if err != nil || len(res.Hosts) != 1 {
			t.Fatalf("LookupMX(%s) = %+v, %v", d, res, err)
		}
	}
	if got := r.preferred.Load(); got != 1 {
		t.Errorf("preferred server %d, want 1 (the live one)", got)
	}

	r = newResolver(t, Options{Timeout: 200 * time.Millisecond}, dead)
	_, err := r.LookupMX(t.Context(), "fb.test")
	var de *Error
	if !errors.As(err, &de) || !de.Temporary() || !strings.Contains(de.Detail, dead) {
		t.Errorf("only a dead server: %v", err)
	}
}

// TestHostileServers runs the resolver against handlers that misbehave in
// ways real servers do.
func TestHostileServers(t *testing.T) {
	as := startAuth(t, "hostile.test. 300 IN MX 10 mx.hostile.test.")
	var big []string
	for i := range 40 {
		big = append(big, fmt.Sprintf("big.test. 300 IN TXT \"%02d %s\"", i, strings.Repeat("x", 60)))
	}
	as.MustAdd(big...)

	isUDP := func(w mdns.ResponseWriter) bool { return w.RemoteAddr().Network() == "udp" }
	tests := []struct {
		name    string
		handler mdns.HandlerFunc
		lookup  string
		wantErr string
	}{
		{
			name: "truncated over UDP",
			handler: func(w mdns.ResponseWriter, req *mdns.Msg) {
				if isUDP(w) {
					m := new(mdns.Msg)
					m.SetReply(req)
					m.Truncated = true
					_ = w.WriteMsg(m)
					return
				}
				as.ServeDNS(w, req)
			},
			lookup: "hostile.test",
		},
		{
			name: "truncated, TCP refused",
			handler: func(w mdns.ResponseWriter, req *mdns.Msg) {
				m := new(mdns.Msg)
				m.SetReply(req)
				m.Truncated = true
				if isUDP(w) {
					_ = w.WriteMsg(m)
				}
				// Over TCP: close without an answer.
			},
			lookup:  "hostile.test",
			wantErr: "was truncated and TCP failed",
		},
		{
			name: "no EDNS0",
			handler: func(w mdns.ResponseWriter, req *mdns.Msg) {
				if req.IsEdns0() != nil {
					m := new(mdns.Msg)
					m.SetRcode(req, mdns.RcodeFormatError)
					m.Extra = nil
					_ = w.WriteMsg(m)
					return
				}
				as.ServeDNS(w, req)
			},
			lookup: "hostile.test",
		},
		{
			name: "reply for another question",
			handler: func(w mdns.ResponseWriter, req *mdns.Msg) {
				req.Question[0].Name = "other.test."
				as.ServeDNS(w, req)
			},
			lookup:  "hostile.test",
			wantErr: "ignored: reply is for",
		},
		{
			name: "REFUSED",
			handler: func(w mdns.ResponseWriter, req *mdns.Msg) {
				m := new(mdns.Msg)
				m.SetRcode(req, mdns.RcodeRefused)
				_ = w.WriteMsg(m)
			},
			lookup:  "hostile.test",
			wantErr: "REFUSED from",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startHandler(t, tt.handler)
			r := newResolver(t, Options{Timeout: 500 * time.Millisecond, Attempts: 1}, addr)
			res, err := r.LookupMX(t.Context(), tt.lookup)
			if tt.wantErr != "" {
				var de *Error
				if !errors.As(err, &de) || !de.Temporary() || !strings.Contains(de.Detail, tt.wantErr) {
					t.Fatalf("LookupMX = %+v, %v; want Temporary containing %q", res, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(res.Hosts) != 1 || res.Hosts[0].Host != "mx.hostile.test" {
				t.Fatalf("LookupMX = %+v, %v", res, err)
			}
		})
	}

	// authserver does not truncate: a reply larger than the EDNS0 size is
	// cut by the UDP read, and the resolver asks again over TCP.
	var tcpQueries atomic.Int32
	addr := startHandler(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
		if !isUDP(w) {
			tcpQueries.Add(1)
		}
		as.ServeDNS(w, req)
	})
	r := newResolver(t, Options{Attempts: 1}, addr)
	txt, err := r.LookupTXT(t.Context(), "big.test")
	if err != nil || len(txt) != 40 || tcpQueries.Load() != 1 {
		t.Fatalf("LookupTXT(big.test) = %d records, %v, %d TCP queries; want 40 records over TCP", len(txt), err, tcpQueries.Load())
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	as := startAuth(t, "shared.test. 300 IN MX 10 mx.shared.test.")
	release := make(chan struct{})
	addr := startHandler(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
		<-release
		as.ServeDNS(w, req)
	})
	r := newResolver(t, Options{Timeout: 10 * time.Second}, addr)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := r.LookupMX(context.Background(), "shared.test")
			if err == nil && len(res.Hosts) != 1 {
				err = fmt.Errorf("hosts %v", res.Hosts)
			}
			errs <- err
		})
	}
	testlib.WaitFor(t, "all concurrent lookups to share one flight", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		f := r.flights[key{"shared.test", mdns.TypeMX}]
		return f != nil && f.waiters == n
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if q := as.Queries(); q != 1 {
		t.Errorf("%d concurrent lookups made %d queries, want 1", n, q)
	}
}

func TestCancellationLeavesNoGoroutines(t *testing.T) {
	as := startAuth(t, "slow.test. 300 IN MX 10 mx.slow.test.", "slow.test. 300 IN A 127.0.0.1")
	as.SetDrop("slow.test", true)
	r := newResolver(t, Options{Timeout: 30 * time.Second}, as.Addr)
	base := runtime.NumGoroutine()

	tests := []struct {
		name   string
		lookup func(ctx context.Context) error
	}{
		{"MX", func(ctx context.Context) error { _, err := r.LookupMX(ctx, "slow.test"); return err }},
		{"IP", func(ctx context.Context) error { _, err := r.LookupIP(ctx, "slow.test"); return err }},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := tt.lookup(ctx)
		cancel()
		var de *Error
		if !errors.As(err, &de) || !de.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v; want Temporary wrapping context.DeadlineExceeded", tt.name, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.LookupMX(ctx, "slow.test"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	testlib.WaitFor(t, "the lookups' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.flights) != 0 {
		t.Errorf("%d flights left", len(r.flights))
	}
}

func BenchmarkLookupMXCached(b *testing.B) {
	as := startAuth(b, mxRecords...)
	r := newResolver(b, Options{}, as.Addr)
	ctx := context.Background()
	if _, err := r.LookupMX(ctx, "equal.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.LookupMX(ctx, "equal.test"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupMXUncached(b *testing.B) {
	as := startAuth(b, mxRecords...)
	clk := newClock()
	r := newResolver(b, Options{Now: clk.Now}, as.Addr)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(48 * time.Hour) // every cached answer expires
		if _, err := r.LookupMX(ctx, "equal.test"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupMXCachedParallel(b *testing.B) {
	as := startAuth(b, mxRecords...)
	r := newResolver(b, Options{}, as.Addr)
	domains := []string{"pref.test", "equal.test", "dup.test", "alias.test"}
	for _, d := range domains {
		if _, err := r.LookupMX(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			if _, err := r.LookupMX(ctx, domains[i%len(domains)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
