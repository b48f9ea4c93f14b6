package spool

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRecover checks that Recover reports every pending entry with its due
// time, rebuilds the count of remaining entries, and cleans up what a crash
// can leave behind: a message whose entries are all gone, and entries whose
// message is gone.
func TestRecover(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	due1, due2 := time.Unix(1700000100, 0).UTC(), time.Unix(1700003600, 0).UTC()
	m1 := testMessage(t, "a@one.example", "b@one.example", "c@two.example")
	m2 := testMessage(t, "d@three.example")
	orphan := testMessage(t, "e@four.example")
	stray := testMessage(t, "f@five.example", "g@five.example")
	_, e1, err := s.Put(m1, due1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(m2, due2); err != nil {
		t.Fatal(err)
	}
	_, eo, err := s.Put(orphan, due1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(stray, due1); err != nil {
		t.Fatal(err)
	}
	// A deferral moves one entry's due time; a delivery removes another.
	e1[2].Due = due2
	if err := s.Update(e1[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(e1[0]); err != nil {
		t.Fatal(err)
	}
	// A crash between removing a message's last entry and the message; and
	// a message whose metadata is gone but not its entries.
	if err := s.db.Delete(entryKey(orphan.ID, eo[0].Index), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete(metaKey(stray.ID), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	defer s.Close()
	var got []Pending
	if err := s.Recover(func(p Pending) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Pending{{m1.ID, 1, due1}, {m1.ID, 2, due2}, {m2.ID, 0, due2}}
	slices.SortFunc(want, func(a, b Pending) int {
		return cmp.Or(strings.Compare(a.MsgID, b.MsgID), a.Index-b.Index)
	})
	if len(got) != len(want) {
		t.Fatalf("Recover = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].MsgID != want[i].MsgID || got[i].Index != want[i].Index || !got[i].Due.Equal(want[i].Due) {
			t.Errorf("pending %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := s.Remaining(m1.ID); n != 2 {
		t.Errorf("Remaining(m1) = %d, want 2", n)
	}
	if n := s.Messages(); n != 2 {
		t.Errorf("Messages = %d, want 2", n)
	}
	for _, id := range []string{m1.ID, m2.ID} {
		if _, err := s.Content(id); err != nil {
			t.Errorf("message with pending entries lost: %v", err)
		}
	}
	if _, err := s.Meta(orphan.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("message without entries: Meta = %v, want it deleted", err)
	}
	if _, err := s.Entry(stray.ID, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("entry without a message: Entry = %v, want it deleted", err)
	}
	e, err := s.Entry(m1.ID, 2)
	if err != nil || e.Rcpt.Addr != "c@two.example" || !e.Due.Equal(due2) {
		t.Errorf("Entry(m1, 2) = %+v, %v", e, err)
	}
	// The rebuilt count still lets the last removal delete the message.
	for _, idx := range []int{1, 2} {
		e, err := s.Entry(m1.ID, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Meta(m1.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("message kept after its last entry was removed: %v", err)
	}
}
