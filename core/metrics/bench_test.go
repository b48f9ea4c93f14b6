package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"corriere/core/event"
	"corriere/core/metrics"
)

// BenchmarkEmit measures what the metrics add to every delivery outcome on
// the event bus, over 20 tenants and 5 providers.
func BenchmarkEmit(b *testing.B) {
	m := metrics.New(metrics.Options{})
	events := make([]event.Event, 100)
	for i := range events {
		events[i] = event.Event{Type: event.Delivered, Tenant: fmt.Sprintf("tenant%d", i%20), Provider: fmt.Sprintf("provider%d", i%5), Class: "transactional"}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Emit(&events[i%len(events)])
			i++
		}
	})
}

// BenchmarkObserveHook measures what the metrics add to every hook call.
func BenchmarkObserveHook(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHook("route", 150*time.Microsecond)
		}
	})
}
