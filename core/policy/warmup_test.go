package policy

import (
	"testing"
	"time"
)

func TestWarmupCap(t *testing.T) {
	w := Warmup{Start: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Daily: []int{50, 100, 200}}
	tests := []struct {
		now     time.Time
		limit   int
		day     int
		warming bool
	}{
		{time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC), 0, 0, true},
		{time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 50, 1, true},
		{time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC), 50, 1, true},
		{time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), 100, 2, true},
		{time.Date(2026, 11, 22, 8, 0, 0, 0, time.FixedZone("CET", 3600)), 200, 3, true},
		{time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 0, 4, false},
	}
	for _, tt := range tests {
		limit, day, warming := w.Cap(tt.now)
		if limit != tt.limit || day != tt.day || warming != tt.warming {
			t.Errorf("Cap(%v) = %d, %d, %v; want %d, %d, %v", tt.now, limit, day, warming, tt.limit, tt.day, tt.warming)
		}
	}
}
