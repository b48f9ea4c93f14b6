package warmup

import (
	"sync"
	"testing"
	"time"

	"corriere/core/spool"
)

func TestReservePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Open(sp, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tr.Reserve("192.0.2.1", "gmail", 50, 30); got != 30 {
		t.Fatalf("first reserve = %d, want 30", got)
	}
	if got, _ := tr.Reserve("192.0.2.1", "gmail", 50, 30); got != 20 {
		t.Fatalf("second reserve = %d, want 20 (cap 50)", got)
	}
	if got, _ := tr.Reserve("192.0.2.1", "microsoft", 50, 5); got != 5 {
		t.Fatalf("other provider = %d, want 5", got)
	}
	sp.Close()

	sp, err = spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	tr, err = Open(sp, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Sent("192.0.2.1", "gmail"); got != 50 {
		t.Fatalf("after restart Sent = %d, want 50", got)
	}
	if got, _ := tr.Reserve("192.0.2.1", "gmail", 50, 1); got != 0 {
		t.Fatalf("reserve over the cap after restart = %d", got)
	}
	// The next day starts afresh, and yesterday's keys are pruned at open.
	now = now.Add(24 * time.Hour)
	if got, _ := tr.Reserve("192.0.2.1", "gmail", 100, 10); got != 10 {
		t.Fatalf("next day reserve = %d, want 10", got)
	}
	if tr.NextDay() != time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) {
		t.Errorf("NextDay = %v", tr.NextDay())
	}
	tr2, err := Open(sp, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr2.Sent("192.0.2.1", "microsoft"); got != 0 {
		t.Errorf("yesterday's count survived: %d", got)
	}
}

func TestReserveConcurrentNeverOvershoots(t *testing.T) {
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	tr, err := Open(sp, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				n, _ := tr.Reserve("192.0.2.1", "gmail", 250, 3)
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != 250 {
		t.Errorf("reserved %d in total, cap 250", total)
	}
}
