package event

import (
	"testing"
)

// TestTaxonomySorted: Valid searches the taxonomy by halves, so a
// category added out of order would not be found.
func TestTaxonomySorted(t *testing.T) {
	if len(taxonomy) != 36 {
		t.Errorf("%d categories, want the 36 of the taxonomy", len(taxonomy))
	}
	for i, c := range taxonomy {
		if i > 0 && taxonomy[i-1] >= c {
			t.Errorf("taxonomy not sorted at %q", c)
		}
		if !c.Valid() {
			t.Errorf("%q is not valid", c)
		}
	}
}

func TestParseCategory(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"authfailure", true},
		{"userunknown", true},
		{"virusdetected", true},
		{"onhold", true},
		{"undefined", true},
		{"feedback", true},
		{"", false},
		{"UserUnknown", false},
		{"user unknown", false},
		{"aaa", false},
		{"zzz", false},
		{string(PolicyLoaded), false},
		{string(HookQuarantined), false},
		{string(CategoryWarmup), false},
	}
	for _, tt := range tests {
		c, err := ParseCategory(tt.in)
		if (err == nil) != tt.valid || Category(tt.in).Valid() != tt.valid {
			t.Errorf("ParseCategory(%q) = %q, %v; Valid = %v; want valid = %v", tt.in, c, err, Category(tt.in).Valid(), tt.valid)
		}
		if err == nil && string(c) != tt.in {
			t.Errorf("ParseCategory(%q) = %q", tt.in, c)
		}
	}
}
