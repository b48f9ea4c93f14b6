package spool

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"corriere/core/message"
)

func openTest(t testing.TB, dir string) *Spool {
	t.Helper()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage(t testing.TB, rcpts ...string) *message.Message {
	t.Helper()
	raw := []byte("From: a@example.org\r\nSubject: test\r\n\r\nHello\r\n")
	h, body, err := message.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Header: h, Body: body, Tenant: "acme", Class: message.Transactional, Received: time.Unix(1700000000, 0).UTC()}
	m.Sender = "a@example.org"
	m.Ret = message.RetHdrs
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r, Notify: message.NotifyFailure})
	}
	return m
}

func TestPutLoadRemove(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	m := testMessage(t, "x@one.example", "y@two.example")
	due := time.Unix(1700000100, 0).UTC()
	meta0, entries, err := s.Put(m, due)
	if err != nil {
		t.Fatal(err)
	}
	if meta0.ID != m.ID || meta0.Recipients != 2 {
		t.Fatalf("meta = %+v", meta0)
	}
	if len(entries) != 2 || entries[1].Rcpt.Addr != "y@two.example" || !entries[0].Due.Equal(due) {
		t.Fatalf("entries = %+v", entries)
	}
	got, meta, err := s.Message(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), m.Bytes()) || got.Tenant != "acme" || got.Ret != message.RetHdrs || meta.Recipients != 2 {
		t.Fatalf("loaded message differs: %+v", got)
	}
	if entries[1].Domain() != "two.example" {
		t.Errorf("Domain = %q", entries[1].Domain())
	}

	if err := s.Remove(entries[0]); err != nil {
		t.Fatal(err)
	}
	if s.Remaining(m.ID) != 1 {
		t.Fatalf("Remaining = %d, want 1", s.Remaining(m.ID))
	}
	if _, err := s.Meta(m.ID); err != nil {
		t.Fatalf("message gone too early: %v", err)
	}
	if err := s.Remove(entries[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta(m.ID); err == nil {
		t.Fatal("message still stored after its last entry was removed")
	}
	if s.Messages() != 0 {
		t.Errorf("Messages = %d, want 0", s.Messages())
	}
}

func TestScanAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	m1 := testMessage(t, "a@one.example", "b@one.example", "c@two.example")
	m2 := testMessage(t, "d@three.example")
	_, e1, err := s.Put(m1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(m2, time.Now()); err != nil {
		t.Fatal(err)
	}
	e1[2].Attempts = 3
	e1[2].LastReply = "451 4.7.1 greylisted"
	if err := s.Update(e1[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(e1[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	defer s.Close()
	got := map[string][]*Entry{}
	err = s.Scan(func(meta *Meta, entries []*Entry) error {
		got[meta.ID] = entries
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[m1.ID]) != 2 || len(got[m2.ID]) != 1 {
		t.Fatalf("scan = %v", got)
	}
	e := got[m1.ID][1]
	if e.Index != 2 || e.Attempts != 3 || e.LastReply != "451 4.7.1 greylisted" || e.Rcpt.Addr != "c@two.example" {
		t.Errorf("entry after reopen = %+v", e)
	}
	if s.Remaining(m1.ID) != 2 {
		t.Errorf("Remaining after scan = %d, want 2", s.Remaining(m1.ID))
	}
}

func TestScanRemovesOrphans(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	m := testMessage(t, "a@one.example")
	_, entries, err := s.Put(m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash between removing the last entry and its message.
	if err := s.db.Delete(entryKey(m.ID, entries[0].Index), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	n := 0
	if err := s.Scan(func(*Meta, []*Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("scan returned %d messages, want 0", n)
	}
	if _, err := s.Meta(m.ID); err == nil {
		t.Fatal("orphan message not deleted")
	}
}

func TestConcurrentPut(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	ids := make(chan string, 400)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				m := testMessage(t, "a@one.example")
				if _, _, err := s.Put(m, time.Now()); err != nil {
					t.Error(err)
					return
				}
				ids <- m.ID
			}
		}()
	}
	wg.Wait()
	close(ids)
	var all []string
	for id := range ids {
		all = append(all, id)
	}
	sort.Strings(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("duplicate ID %s", all[i])
		}
	}
	if s.Messages() != 400 {
		t.Errorf("Messages = %d, want 400", s.Messages())
	}
}

func TestNewIDOrdered(t *testing.T) {
	prev := NewID()
	for i := 0; i < 1000; i++ {
		id := NewID()
		if len(id) != 20 {
			t.Fatalf("len(%q) = %d", id, len(id))
		}
		if id[:13] < prev[:13] {
			t.Fatalf("time part went backwards: %s after %s", id, prev)
		}
		prev = id
	}
}

func TestKeyspace(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	a, b := s.Keyspace("alpha"), s.Keyspace("beta")
	for i := 0; i < 3; i++ {
		if err := a.Set(fmt.Sprintf("t1/%d", i), []byte{byte(i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Set("t2/x", []byte("x"), true); err != nil {
		t.Fatal(err)
	}
	if err := b.Set("t1/0", []byte("other"), false); err != nil {
		t.Fatal(err)
	}
	if err := b.SetAll([]string{"t3/a", "t3/b"}, []byte("many"), true); err != nil {
		t.Fatal(err)
	}
	var many []string
	if err := b.Scan("t3/", func(k string, v []byte) error { many = append(many, k+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(many) != "[t3/a=many t3/b=many]" {
		t.Errorf("SetAll then Scan = %v", many)
	}
	var keys []string
	if err := a.Scan("t1/", func(k string, v []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[t1/0 t1/1 t1/2]" {
		t.Errorf("scan keys = %v", keys)
	}
	v, ok, err := b.Get("t1/0")
	if err != nil || !ok || string(v) != "other" {
		t.Errorf("Get = %q %v %v", v, ok, err)
	}
	if err := a.Delete("t2/x", false); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Get("t2/x"); ok {
		t.Error("deleted key still present")
	}
}

// BenchmarkPutParallel measures durable Puts from concurrent writers, which
// share fsyncs through Pebble's group commit.
func BenchmarkPutParallel(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer s.Close()
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\r\n"), 80)
	b.SetParallelism(4)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := testMessage(b, "a@one.example")
			m.Body = body
			if _, _, err := s.Put(m, time.Now()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestBounceRefOutlivesMessage(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	m := testMessage(t, "a@x.example", "b@y.example")
	m.Sender = "bounces@bounces.example.net"
	m.Author = "dott.rossi@studio-rossi.example"
	meta, entries, err := s.Put(m, m.Received)
	if err != nil {
		t.Fatal(err)
	}
	plain := testMessage(t, "c@z.example")
	if _, _, err := s.Put(plain, plain.Received); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BounceRef(plain.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a message without an author got a bounce reference (err %v)", err)
	}
	for _, e := range entries {
		if err := s.Remove(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	ref, err := s.BounceRef(meta.ID)
	if err != nil {
		t.Fatalf("bounce reference after the message was removed and the spool reopened: %v", err)
	}
	if ref.Author != m.Author || ref.Tenant != "acme" || len(ref.Rcpts) != 2 || ref.Rcpts[1] != "b@y.example" {
		t.Errorf("bounce reference = %+v", ref)
	}
	// The message's ID was made now: a cutoff before keeps its reference,
	// one after removes it.
	if err := s.PruneBounceRefs(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BounceRef(meta.ID); err != nil {
		t.Fatalf("prune with an earlier cutoff removed the reference: %v", err)
	}
	if err := s.PruneBounceRefs(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BounceRef(meta.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("pruned reference still there (err %v)", err)
	}
}
