package verp

import (
	"errors"
	"strings"
	"testing"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestReferenceRoundTrip(t *testing.T) {
	s := testSigner(t, testKey)
	for _, r := range []Reference{
		{Tenant: "negozio", MsgID: "1hre6odi2edg3dal2001", Index: 2, Rcpt: "mario.verdi@gmail.com", Source: "192.0.2.7", Provider: "gmail", Class: "newsletter"},
		{MsgID: "1hre6odi2edg3dal2001", Index: -1, Source: "2001:db8::1"},
		{Tenant: "t", MsgID: "m", Index: 0, Rcpt: "ü@例え.jp"},
	} {
		v := s.Seal(r)
		if len(v) > 998-len(RefHeader)-2 || strings.ContainsAny(v, " \t\r\n") {
			t.Errorf("Seal(%+v) = %q: not one header line", r, v)
		}
		if strings.Contains(v, r.Rcpt) && r.Rcpt != "" {
			t.Errorf("Seal(%+v) = %q shows the recipient", r, v)
		}
		got, err := s.Open(v)
		if err != nil || got != r {
			t.Errorf("Open(Seal(%+v)) = %+v, %v", r, got, err)
		}
		if again := s.Seal(r); again == v {
			t.Errorf("two seals of %+v are equal: the nonce is not random", r)
		}
	}
}

func TestReferenceForgeries(t *testing.T) {
	s := testSigner(t, testKey)
	other := testSigner(t, "fedcba9876543210fedcba9876543210")
	good := s.Seal(Reference{Tenant: "negozio", MsgID: "1hre6odi2edg3dal2001", Index: 0, Rcpt: "a@gmail.com"})
	flip := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		value string
		want  error // nil: ErrForged or ErrNotReference
	}{
		{"one character changed", flip(good, len(good)/2), ErrForged},
		{"last character changed", flip(good, len(good)-1), nil},
		{"sealed with another key", other.Seal(Reference{Tenant: "negozio", MsgID: "x", Index: 0, Rcpt: "a@gmail.com"}), ErrForged},
		{"truncated", good[:len(good)-10], ErrForged},
		{"no version", good[2:], ErrNotReference},
		{"not base64", "1.this is not base64!", ErrNotReference},
		{"too short", "1.AAAA", ErrNotReference},
		{"empty", "", ErrNotReference},
		{"too long", "1." + strings.Repeat("A", 4096), ErrNotReference},
	} {
		_, err := s.Open(tc.value)
		if tc.want == nil && (errors.Is(err, ErrForged) || errors.Is(err, ErrNotReference)) {
			continue // either, as long as it is refused
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzOpen: whatever a report quotes as a reference, Open never panics,
// and accepts only values that Seal made.
func FuzzOpen(f *testing.F) {
	s, err := New([]byte(testKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Seal(Reference{Tenant: "t", MsgID: "m", Index: 1, Rcpt: "a@b.example"}))
	f.Add("1.")
	f.Add("1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, v string) {
		r, err := s.Open(v)
		if err == nil && (r.MsgID == "" || r.Index < -1) {
			t.Fatalf("Open(%q) = %+v without error", v, r)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	s, err := New([]byte(testKey))
	if err != nil {
		b.Fatal(err)
	}
	r := Reference{Tenant: "negozio", MsgID: "1hre6odi2edg3dal2001", Index: 3, Rcpt: "mario.verdi@gmail.com", Source: "192.0.2.7", Provider: "gmail", Class: "newsletter"}
	b.ReportAllocs()
	for b.Loop() {
		s.Seal(r)
	}
}

func BenchmarkOpen(b *testing.B) {
	s, err := New([]byte(testKey))
	if err != nil {
		b.Fatal(err)
	}
	v := s.Seal(Reference{Tenant: "negozio", MsgID: "1hre6odi2edg3dal2001", Index: 3, Rcpt: "mario.verdi@gmail.com", Source: "192.0.2.7", Provider: "gmail", Class: "newsletter"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(v); err != nil {
			b.Fatal(err)
		}
	}
}
