package event

import (
	"testing"
)

func TestCategories(t *testing.T) {
	cats := Categories()
	if len(cats) != 36 {
		t.Errorf("%d categories, want the 36 of the taxonomy", len(cats))
	}
	for i, c := range cats {
		if i > 0 && cats[i-1] >= c {
			t.Errorf("categories not sorted at %q", c)
		}
	}
	cats[0] = "changed"
	if Categories()[0] == "changed" {
		t.Error("Categories returns the package's own slice")
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
