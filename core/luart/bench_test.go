package luart

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
)

// The benchmarks run every hook of the shipped policy (scripts/, rules/)
// on realistic input. The target is under 20µs per call on a 2-core
// machine: go test -bench=. -count=5 ./core/luart

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	return defaultEngine(b, Options{Sources: threeSources, Counters: &memCounters{}})
}

func BenchmarkClassify(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	m := loadMessage(b, "newsletter.eml", "example")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Classify(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassifyTransactional(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	m := loadMessage(b, "transactional.eml", "clinic")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Classify(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	m := loadMessage(b, "newsletter.eml", "example")
	m.Class, m.Campaign = message.Newsletter, "spring-2025"
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Rewrite(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoute(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	m := loadMessage(b, "transactional.eml", "example")
	m.Class = message.Transactional
	d := &policy.Delivery{Message: m, Recipient: "giulia.bianchi@gmail.com", Domain: "gmail.com",
		Provider: "gmail", MXHost: "gmail-smtp-in.l.google.com"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Route(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShape is the cached path, what the core sees after the first
// call for a (provider, source) pair.
func BenchmarkShape(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Shape(ctx, "libero", "192.0.2.10"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShapeLua runs the shape hook itself, bypassing the cache.
func BenchmarkShapeLua(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	g := e.cur.Load()
	b.ReportAllocs()
	for b.Loop() {
		g.shapeMu.Lock()
		clear(g.shapes)
		g.shapeMu.Unlock()
		if _, err := e.Shape(ctx, "libero", "192.0.2.10"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOnResponse(b *testing.B) {
	replies := []struct {
		name string
		r    *reply.Reply
	}{
		{"accepted", reply.New(250, "2.0.0", "OK 1717400000 a1si123")},
		{"gmail-rate", reply.New(421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail originating from your IP address.")},
		{"greylisted", reply.New(450, "4.2.0", "Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html")},
		{"user-unknown", reply.New(550, "5.1.1", "The email account that you tried to reach does not exist.")},
	}
	for _, rp := range replies {
		b.Run(rp.name, func(b *testing.B) {
			e := benchEngine(b)
			ctx := context.Background()
			a := &policy.Attempt{Stage: policy.StageRcpt, Reply: rp.r, Recipient: "giulia.bianchi@gmail.com",
				Tenant: "example", Class: message.Transactional, Provider: "gmail", MXHost: "gmail-smtp-in.l.google.com",
				Source: "192.0.2.10", Age: time.Minute}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.OnResponse(ctx, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOnBounce(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	r := &policy.BounceReport{Kind: "dsn", Recipient: "x@libero.it", Action: "failed", Status: "5.1.1", ReplyCode: 550,
		Diagnostic: "smtp; 550 5.1.1 <x@libero.it>: Recipient address rejected: User unknown", RemoteMTA: "smtp-in.libero.it"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.OnBounce(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProvider(b *testing.B) {
	e := benchEngine(b)
	b.ReportAllocs()
	for b.Loop() {
		if e.Provider("alt1.aspmx.l.google.com") != "gmail" {
			b.Fatal("wrong provider")
		}
	}
}

// BenchmarkClassifyParallel runs classify from every CPU at once, through
// the state pool.
func BenchmarkClassifyParallel(b *testing.B) {
	e := benchEngine(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		m := loadMessage(b, "newsletter.eml", "example")
		for pb.Next() {
			if _, err := e.Classify(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReload builds and swaps in a new generation of the shipped
// policy; with WatchDebounce it bounds how soon a saved change is live.
func BenchmarkReload(b *testing.B) {
	e := benchEngine(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMeasureState is the walk that checks what a state of the
// shipped policy keeps between calls.
func BenchmarkMeasureState(b *testing.B) {
	e := benchEngine(b)
	g := e.cur.Load()
	st, err := g.get(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer g.put(st)
	size, _ := st.measure(false, unlimited)
	b.ReportMetric(float64(size), "state_bytes")
	b.ReportAllocs()
	for b.Loop() {
		st.measure(false, unlimited)
	}
}

// BenchmarkMemoryBudgetDoubling runs a classify hook that doubles a string
// forever, under the default memory budget, and reports how long it ran before
// the memory budget stopped it (the target is 250ms) and how far the process's resident memory
// rose above where it was before the call (Linux: VmHWM after resetting it
// through /proc/self/clear_refs; the target is under 256 MiB).
func BenchmarkMemoryBudgetDoubling(b *testing.B) {
	scripts, rules := policyDirs(b, map[string]string{"scripts/tenants/hog.lua": hogTenant})
	// No quarantine, and a time budget the memory budget must beat.
	e := newEngine(b, Options{ScriptsDir: scripts, RulesDir: rules, QuarantineStrikes: 1 << 30, CallTimeout: 10 * time.Second})
	m := loadMessage(b, "transactional.eml", "hog")
	m.Header.Set("Subject", "double")
	var stopMs, growthMiB []float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		before := procStatusKiB(b, "VmRSS")
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Skipf("cannot reset the peak RSS: %v", err)
		}
		start := time.Now()
		_, err := e.Classify(context.Background(), m)
		stopMs = append(stopMs, float64(time.Since(start).Microseconds())/1000)
		growthMiB = append(growthMiB, float64(procStatusKiB(b, "VmHWM")-before)/1024)
		if !errors.Is(err, ErrMemoryBudget) {
			b.Fatalf("Classify = %v, want the memory budget", err)
		}
	}
	b.ReportMetric(median(stopMs), "stop_ms")
	b.ReportMetric(median(growthMiB), "rss_growth_MiB")
	b.ReportMetric(slices.Max(growthMiB), "max_rss_growth_MiB")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// procStatusKiB reads a "Name: N kB" line of /proc/self/status.
func procStatusKiB(b *testing.B, name string) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", name)
	return 0
}
