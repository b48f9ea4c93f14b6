package ingest

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

func TestAuthorDomains(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		froms []string
		want  []string
		ok    bool
	}{
		{"none", nil, nil, true},
		{"one", []string{`"Acme" <News@Mail.ACME.example>`}, []string{"mail.acme.example"}, true},
		{"list", []string{"a@acme.example, b@bank.example"}, []string{"acme.example", "bank.example"}, true},
		// Add puts a field on top, so the second field comes first.
		{"two fields", []string{"a@acme.example", "b@bank.example"}, []string{"bank.example", "acme.example"}, true},
		{"encoded name", []string{"=?utf-8?q?Caf=C3=A9?= <a@acme.example>"}, []string{"acme.example"}, true},
		{"group", []string{"team: a@acme.example, b@bank.example;"}, []string{"acme.example", "bank.example"}, true},
		{"unterminated", []string{"<a@acme.example"}, nil, false},
		{"no domain", []string{"undisclosed"}, nil, false},
		{"empty", []string{""}, nil, false},
		{"bad domain", []string{"a@bad_domain.example"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h textproto.Header
			for _, f := range tc.froms {
				h.Add("From", f)
			}
			got, ok := authorDomains(&h)
			if ok != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("authorDomains(%q) = %q, %v; want %q, %v", tc.froms, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzAuthorDomains(f *testing.F) {
	for _, s := range []string{"a@acme.example", `"x" <a@b.example>, c@d.example`, "g: a@b.example;", "=?utf-8?b?w6k=?= <a@b.example>", "<a@[192.0.2.1]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, from string) {
		var h textproto.Header
		h.Add("From", from)
		domains, ok := authorDomains(&h)
		for _, d := range domains {
			if !ok || d == "" || strings.ContainsAny(d, "@ \r\n") || d != strings.ToLower(d) {
				t.Fatalf("authorDomains(%q) = %q, %v", from, domains, ok)
			}
		}
	})
}
