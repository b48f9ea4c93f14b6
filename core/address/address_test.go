package address

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		utf8    bool
		want    Address
		wantErr error
	}{
		{in: "user@example.org", want: Address{"user", "example.org"}},
		{in: "User.Name+tag@Example.ORG", want: Address{"User.Name+tag", "example.org"}},
		{in: `"john doe"@example.org`, want: Address{`"john doe"`, "example.org"}},
		{in: `"a\"b"@example.org`, want: Address{`"a\"b"`, "example.org"}},
		{in: "user@example.org.", want: Address{"user", "example.org"}},
		{in: "postmaster@[192.0.2.1]", want: Address{"postmaster", "[192.0.2.1]"}},
		{in: "x@[IPv6:2001:db8::1]", want: Address{"x", "[IPv6:2001:db8::1]"}},
		{in: "josé@bücher.example", utf8: true, want: Address{"josé", "xn--bcher-kva.example"}},
		{in: "josé@example.org", wantErr: ErrNeedsUTF8},
		{in: "", wantErr: ErrEmpty},
		{in: "user", wantErr: ErrNoAtDomain},
		{in: "@example.org", wantErr: ErrSyntax},
		{in: "a..b@example.org", wantErr: ErrSyntax},
		{in: ".a@example.org", wantErr: ErrSyntax},
		{in: "a b@example.org", wantErr: ErrSyntax},
		{in: `"unterminated@example.org`, wantErr: ErrSyntax},
		{in: "user@", wantErr: ErrBadDomain},
		{in: "user@-bad.example", wantErr: ErrBadDomain},
		{in: "user@exa_mple.org", wantErr: ErrBadDomain},
		{in: "user@[300.1.1.1]", wantErr: ErrBadDomain},
		{in: "user@[1.2.3.4", wantErr: ErrBadDomain},
		{in: "a1234567890123456789012345678901234567890123456789012345678901234@example.org", wantErr: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in, Options{AllowUTF8: tt.utf8})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNullAddress(t *testing.T) {
	var a Address
	if !a.IsNull() || a.String() != "" {
		t.Errorf("zero Address: IsNull=%v String=%q", a.IsNull(), a.String())
	}
}

// FuzzParse checks that Parse never panics and that what it accepts
// round-trips: parsing the normalised form gives the same address.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"user@example.org", `"q\"x"@example.org`, "x@[IPv6:::1]", "josé@bücher.example", "a@b", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s, Options{AllowUTF8: true})
		if err != nil {
			return
		}
		b, err := Parse(a.String(), Options{AllowUTF8: true})
		if err != nil {
			t.Fatalf("normalised %q of %q does not parse: %v", a.String(), s, err)
		}
		if a != b {
			t.Fatalf("not idempotent: %q -> %+v -> %+v", s, a, b)
		}
	})
}
