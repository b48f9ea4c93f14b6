package tenant

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckDomain(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"bounce.shop.example", "bounce.shop.example", true},
		{"Bounce.Shop.Example.", "bounce.shop.example", true},
		{"rp-1.shop.example", "rp-1.shop.example", true},
		{"localhost", "", false},
		{"bounces@shop.example", "", false},
		{"-x.shop.example", "", false},
		{"x..example", "", false},
		{"x y.example", "", false},
		{strings.Repeat("a", 64) + ".example", "", false},
		{"", "", false},
	} {
		got, err := CheckDomain("return_path_domain", tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CheckDomain(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestReturnPathDomains(t *testing.T) {
	r := ReturnPath{Domain: "Bounce.Shop.Example", BounceDomain: "bounces.platform.example"}
	if got := r.Domains(); !slices.Equal(got, []string{"bounce.shop.example", "bounces.platform.example"}) {
		t.Errorf("Domains() = %v", got)
	}
	if got := (ReturnPath{}).Domains(); len(got) != 0 {
		t.Errorf("Domains() of none = %v", got)
	}
}
