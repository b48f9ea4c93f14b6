package suppress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"corriere/core/spool"
)

var day = time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)

func openList(t *testing.T, dir string) (*List, *spool.Spool) {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return New(sp, &Options{Now: func() time.Time { return day }}), sp
}

func TestList(t *testing.T) {
	l, _ := openList(t, t.TempDir())
	for _, e := range []Entry{
		{Tenant: "acme", Address: "Gone@Dest.Example", Category: "userunknown", Source: SourceBounce, Reason: "550 5.1.1 no such user"},
		{Tenant: "acme", Address: "<angry@dest.example>", Category: "feedback", Source: SourceComplaint},
		{Tenant: "", Address: "relay@dest.example", Source: SourceManual},
		{Tenant: "beta", Address: "x@bücher.example", Source: SourceManual},
	} {
		if _, err := l.Add(e); err != nil {
			t.Fatalf("Add(%+v): %v", e, err)
		}
	}
	for _, tc := range []struct {
		tenant, addr string
		want         bool
	}{
		{"acme", "gone@dest.example", true},
		{"acme", "GONE@dest.EXAMPLE", true},
		{"acme", "angry@dest.example", true},
		{"beta", "gone@dest.example", false}, // per-tenant: deliverable for beta
		{"", "gone@dest.example", false},
		{"", "relay@dest.example", true},
		{"acme", "relay@dest.example", false},
		{"beta", "x@xn--bcher-kva.example", true},
		{"beta", "x@BÜCHER.example", true},
		{"acme", "not an address", false},
	} {
		e, ok, err := l.Lookup(tc.tenant, tc.addr)
		if err != nil || ok != tc.want {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %v", tc.tenant, tc.addr, ok, err, tc.want)
		}
		if ok && (e.Tenant != tc.tenant || !e.Added.Equal(day)) {
			t.Errorf("Lookup(%q, %q) = %+v", tc.tenant, tc.addr, e)
		}
	}
	var all []string
	if err := l.Scan(AllTenants, func(e Entry) error { all = append(all, e.Tenant+"/"+e.Address); return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(all, " "), "/relay@dest.example acme/angry@dest.example acme/gone@dest.example beta/x@xn--bcher-kva.example"; got != want {
		t.Errorf("Scan(all) = %s; want %s", got, want)
	}
	var acme []string
	l.Scan("acme", func(e Entry) error { acme = append(acme, e.Address); return nil })
	if len(acme) != 2 {
		t.Errorf("Scan(acme) = %v", acme)
	}

	// AddIfAbsent keeps the first entry.
	if added, err := l.AddIfAbsent(Entry{Tenant: "acme", Address: "gone@dest.example", Category: "hostunknown", Added: day.Add(time.Hour)}); err != nil || added {
		t.Errorf("AddIfAbsent on a suppressed address = %v, %v", added, err)
	}
	if e, _, _ := l.Lookup("acme", "gone@dest.example"); e.Category != "userunknown" || !e.Added.Equal(day) {
		t.Errorf("entry rewritten: %+v", e)
	}

	if e, err := l.Remove("acme", "GONE@dest.example"); err != nil || e.Category != "userunknown" {
		t.Errorf("Remove = %+v, %v", e, err)
	}
	if _, err := l.Remove("acme", "gone@dest.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v; want ErrNotFound", err)
	}
	if _, ok, _ := l.Lookup("acme", "gone@dest.example"); ok {
		t.Error("still suppressed after Remove")
	}

	for _, bad := range []Entry{
		{Tenant: "acme", Address: ""},
		{Tenant: "acme", Address: "no-at-sign"},
		{Tenant: "acme", Address: "a..b@dest.example"},
		{Tenant: AllTenants, Address: "a@dest.example"},
		{Tenant: "ac\x00me", Address: "a@dest.example"},
	} {
		if _, err := l.Add(bad); err == nil {
			t.Errorf("Add(%+v) accepted", bad)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	l, _ := openList(t, t.TempDir())
	in := "\ufefftenant,address,category,reason,source,added\n" +
		"acme,Gone@Dest.Example,userunknown,\"550 5.1.1 no such user, sorry\",bounce,2026-11-30T14:05:00Z\n" +
		",relay@dest.example,,,,\n" +
		"beta,x@dest.example,feedback,\"multi\nline\",complaint,2026-10-01T08:00:00+02:00\n"
	n, err := l.ImportCSV(strings.NewReader(in))
	if err != nil || n != 3 {
		t.Fatalf("ImportCSV = %d, %v", n, err)
	}
	// Idempotent: a second import leaves the same list.
	if _, err := l.ImportCSV(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := l.ExportCSV(&out, AllTenants); err != nil {
		t.Fatal(err)
	}
	want := "tenant,address,category,reason,source,added\n" +
		",relay@dest.example,,,import,2026-11-30T14:05:00Z\n" +
		"acme,gone@dest.example,userunknown,\"550 5.1.1 no such user, sorry\",bounce,2026-11-30T14:05:00Z\n" +
		"beta,x@dest.example,feedback,\"multi\nline\",complaint,2026-10-01T06:00:00Z\n"
	if out.String() != want {
		t.Errorf("export:\n%s\nwant:\n%s", out.String(), want)
	}
	// Export then import into an empty list gives the same export.
	l2, _ := openList(t, t.TempDir())
	if _, err := l2.ImportCSV(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	l2.ExportCSV(&again, AllTenants)
	if again.String() != want {
		t.Errorf("re-export:\n%s", again.String())
	}
	var acme bytes.Buffer
	l2.ExportCSV(&acme, "acme")
	if strings.Count(acme.String(), "\n") != 2 {
		t.Errorf("export of acme:\n%s", acme.String())
	}
	// A minimal file: tenant and address only, in any order.
	if n, err := l.ImportCSV(strings.NewReader("address,tenant\nnew@dest.example,acme\n")); err != nil || n != 1 {
		t.Errorf("minimal import = %d, %v", n, err)
	}
}

func TestCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the error
	}{
		{"empty", "", []string{"empty CSV file"}},
		{"unknown column", "tenant,address,colour\n", []string{"line 1", `unknown column "colour"`}},
		{"no address column", "tenant,reason\n", []string{"line 1", "tenant and address"}},
		{"duplicate column", "tenant,address,tenant\n", []string{"appears twice"}},
		{"bad rows", "tenant,address,added\n" +
			"acme,ok@dest.example,\n" +
			"acme,not-an-address,\n" +
			"acme,ok2@dest.example,yesterday\n" +
			"acme,too,many,fields\n" +
			"*,x@dest.example,\n",
			[]string{"line 3: suppress: address", "line 4: added \"yesterday\"", "line 5: 4 fields", "line 6: suppress: \"*\""}},
		{"quoted reason spans lines", "tenant,address,reason\nacme,a@dest.example,\"one\ntwo\"\nacme,bad,\n", []string{"line 4:"}},
		{"broken quote", "tenant,address\nacme,\"a@dest.example\n", []string{"line 2:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := openList(t, t.TempDir())
			_, err := l.ImportCSV(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Nothing is written when a row is bad.
			n := 0
			l.Scan(AllTenants, func(Entry) error { n++; return nil })
			if n != 0 {
				t.Errorf("%d entries written by a refused import", n)
			}
		})
	}
}

func FuzzImportCSV(f *testing.F) {
	f.Add("tenant,address,category,reason,source,added\nacme,a@b.example,userunknown,x,bounce,2026-11-30T14:05:00Z\n")
	f.Add("address,tenant\n\"a@b.example\",\n")
	f.Add("tenant,address\nacme,\"unterminated\n")
	f.Add("\ufefftenant,address\n,a@[192.0.2.1]\n")
	f.Add("tenant,address,added\nacme,\"q uoted\"@b.example,2026-11-30T14:05:00+99:00\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w, _ := NewCSVWriter(&buf)
		for _, e := range entries {
			if ValidateTenant(e.Tenant) != nil {
				t.Fatalf("invalid tenant accepted: %q", e.Tenant)
			}
			if a, err := NormalizeAddress(e.Address); err != nil || a != e.Address {
				t.Fatalf("address %q not normalised (%q, %v)", e.Address, a, err)
			}
			w.Write(e)
		}
		w.Flush()
		again, err := ReadCSV(&buf)
		if err != nil || len(again) != len(entries) {
			t.Fatalf("exported entries do not read back: %v\n%s", err, buf.String())
		}
	})
}
