package spool

import (
	"slices"
	"testing"
	"time"

	"corriere/core/message"
)

// TestSelect checks selection by tenant (through the index), campaign,
// class and age, and that the index follows messages as they finish and
// survives a reopen.
func TestSelect(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	put := func(tenant, campaign string, class message.Class, rcpts ...string) (string, []*Entry) {
		m := testMessage(t, rcpts...)
		m.Tenant, m.Campaign, m.Class = tenant, campaign, class
		_, entries, err := s.Put(m, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return m.ID, entries
	}
	a1, a1e := put("acme", "spring", message.Newsletter, "x@one.example", "y@two.example")
	a2, _ := put("acme", "", message.Transactional, "z@one.example")
	b1, _ := put("bolt", "spring", message.Newsletter, "w@one.example")
	r1, _ := put("", "", message.Transactional, "v@one.example")
	cut := IDBefore(time.Now())
	a3, _ := put("acme", "autumn", message.Newsletter, "u@one.example")

	ids := func(sel Selector) []string {
		t.Helper()
		var out []string
		if err := s.Select(sel, func(m *Meta) bool { out = append(out, m.ID); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name string
		sel  Selector
		want []string
	}{
		{"everything", Selector{}, []string{a1, a2, b1, r1, a3}},
		{"tenant", Selector{Tenant: "acme"}, []string{a1, a2, a3}},
		{"no tenant", Selector{Tenant: NoTenant}, []string{r1}},
		{"tenant and campaign", Selector{Tenant: "acme", Campaign: "spring"}, []string{a1}},
		{"campaign across tenants", Selector{Campaign: "spring"}, []string{a1, b1}},
		{"class", Selector{Class: message.Transactional}, []string{a2, r1}},
		{"older than", Selector{Before: cut}, []string{a1, a2, b1, r1}},
		{"tenant, older than", Selector{Tenant: "acme", Before: cut}, []string{a1, a2}},
		{"unknown tenant", Selector{Tenant: "nobody"}, nil},
	}
	for _, tc := range tests {
		if got := ids(tc.sel); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	var n int
	if err := s.Select(Selector{Tenant: "acme"}, func(*Meta) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Errorf("fn returning false did not stop the selection: %d calls, %v", n, err)
	}
	if es, err := s.Entries(a1); err != nil || len(es) != 2 || es[1].Rcpt.Addr != "y@two.example" {
		t.Errorf("Entries(%s) = %v, %v", a1, es, err)
	}

	// A finished message leaves the index with its last entry.
	for _, e := range a1e {
		if err := s.Remove(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(Selector{Tenant: "acme"}); !slices.Equal(got, []string{a2, a3}) {
		t.Errorf("after a1 finished: %v", got)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	if got := ids(Selector{Tenant: "acme"}); !slices.Equal(got, []string{a2, a3}) {
		t.Errorf("after reopen: %v", got)
	}
}

// TestIndexBuiltForOldSpool checks a spool written before the tenant
// index gets it at Open.
func TestIndexBuiltForOldSpool(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	m := testMessage(t, "x@one.example")
	if _, _, err := s.Put(m, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Make it look like a spool from before the index.
	if err := s.db.DeleteRange([]byte{prefixIndex}, []byte{prefixIndex + 1}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	var got []string
	if err := s.Select(Selector{Tenant: "acme"}, func(meta *Meta) bool { got = append(got, meta.ID); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{m.ID}) {
		t.Errorf("after reopen: %v, want [%s]", got, m.ID)
	}
}
