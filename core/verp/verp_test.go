package verp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSigner(t *testing.T, key string) *Signer {
	t.Helper()
	s, err := New([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const msgID = "0r3f5k2q7hx2m4q8zt5y"

func TestAddressRoundTrip(t *testing.T) {
	s := testSigner(t, "0123456789abcdef0123456789abcdef")
	tests := []struct {
		name, base string
		index      int
		wantPrefix string
	}{
		{"plain", "bounces@bounces.example.net", 0, "bounces+" + msgID + "-0-"},
		{"later recipient", "bounces@bounces.example.net", 317, "bounces+" + msgID + "-317-"},
		{"base with plus", "a+b@bounces.example.net", 2, "a+b+" + msgID + "-2-"},
		{"long base", strings.Repeat("x", 40) + "@bounces.example.net", 1, "b+" + msgID + "-1-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.Address(tt.base, msgID, tt.index)
			if !strings.HasPrefix(a, tt.wantPrefix) {
				t.Fatalf("Address = %q, want prefix %q", a, tt.wantPrefix)
			}
			if local := a[:strings.LastIndexByte(a, '@')]; len(local) > maxLocal {
				t.Errorf("local part of %d octets: %q", len(local), local)
			}
			for _, variant := range []string{a, strings.ToUpper(a)} {
				ref, err := s.Parse(variant)
				if err != nil {
					t.Fatalf("Parse(%q): %v", variant, err)
				}
				if ref != (Ref{MsgID: msgID, Index: tt.index}) {
					t.Errorf("Parse(%q) = %+v", variant, ref)
				}
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	s := testSigner(t, "0123456789abcdef0123456789abcdef")
	other := testSigner(t, "another key, as long as needed..")
	good := s.Address("bounces@bounces.example.net", msgID, 3)
	at := strings.LastIndexByte(good, '@')
	tests := []struct {
		name, addr string
		want       error
	}{
		{"no tag", "bounces@bounces.example.net", ErrNotVERP},
		{"no domain", "bounces+x-1-y", ErrNotVERP},
		{"two fields", "bounces+abc-def@bounces.example.net", ErrNotVERP},
		{"index not a number", "bounces+" + msgID + "-x-aaaa@bounces.example.net", ErrNotVERP},
		{"index with sign", "bounces+" + msgID + "-+3-aaaa@bounces.example.net", ErrNotVERP},
		{"other key", other.Address("bounces@bounces.example.net", msgID, 3), ErrForged},
		{"other recipient", strings.Replace(good, "-3-", "-4-", 1), ErrForged},
		{"other message", strings.Replace(good, msgID, "0r3f5k2q7hx2m4q8zt5z", 1), ErrForged},
		{"other domain", good[:at] + "@elsewhere.example", ErrForged},
		{"tag cut short", good[:at-1] + good[at:], ErrForged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Parse(tt.addr); !errors.Is(err, tt.want) {
				t.Errorf("Parse(%q) = %v, want %v", tt.addr, err, tt.want)
			}
		})
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("New accepted a 5-byte key")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verp.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize {
		t.Fatalf("made a key of %d bytes", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Error("the key changed on the second load")
	}
	if err := os.WriteFile(path, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a key file that is not hex loaded")
	}
}

func FuzzParse(f *testing.F) {
	s, err := New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Address("bounces@bounces.example.net", msgID, 3))
	f.Add("a+b-1-c@d")
	f.Add("+--@")
	f.Fuzz(func(t *testing.T, addr string) {
		ref, err := s.Parse(addr)
		if err != nil {
			return
		}
		// Whatever verifies must be what Address makes for its reference.
		at := strings.LastIndexByte(addr, '@')
		again := s.Address("x@"+addr[at+1:], ref.MsgID, ref.Index)
		if _, err := s.Parse(again); err != nil {
			t.Fatalf("%q verified as %+v, but its re-made address %q does not: %v", addr, ref, again, err)
		}
	})
}
