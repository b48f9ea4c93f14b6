package reputation

import (
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/spool"
)

// BenchmarkEmit measures what counting one delivery costs the event bus:
// seven rows, two buckets each.
func BenchmarkEmit(b *testing.B) {
	sp, err := spool.Open(spool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	tr, err := Open(sp, Options{FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	e := &event.Event{Type: event.Delivered, Source: "10.0.0.1", Provider: "gmail", MX: "mx", Tenant: "shop", Class: "newsletter", Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		tr.Emit(e)
	}
}

// BenchmarkRows measures a full report over 1,000 rows, as the status
// page asks every two seconds.
func BenchmarkRows(b *testing.B) {
	sp, err := spool.Open(spool.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	tr, err := Open(sp, Options{FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	now := time.Now()
	for i := range 200 {
		for h := range 48 {
			tr.Emit(&event.Event{Type: event.Delivered, Source: "10.0.0." + string(rune('0'+i%10)), Provider: "p" + string(rune('a'+i%20)),
				MX: "mx", Tenant: "t" + string(rune('a'+i%26)), Class: "newsletter", Time: now.Add(-time.Duration(h) * time.Hour)})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Rows(Filter{Hourly: true})
	}
}
