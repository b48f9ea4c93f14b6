package mtasts

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       *Policy // nil: an error
	}{
		{"enforce", "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.mx.example.org\r\nmax_age: 86400\r\n",
			&Policy{Mode: Enforce, MX: []string{"mx1.example.org", "*.mx.example.org"}, MaxAge: 86400}},
		{"LF endings, spaces, unknown key", "version: STSv1\nmode:testing\nmx:  MX.Example.org. \nfoo: bar\nmax_age: 0\n",
			&Policy{Mode: Testing, MX: []string{"mx.example.org"}, MaxAge: 0}},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 600\n", &Policy{Mode: None, MaxAge: 600}},
		{"no version", "mode: enforce\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"wrong version", "version: STSv2\nmode: enforce\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"no mode", "version: STSv1\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"unknown mode", "version: STSv1\nmode: strict\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"two modes", "version: STSv1\nmode: testing\nmode: enforce\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: mx.example.org\n", nil},
		{"max_age too large", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 31557601\n", nil},
		{"max_age negative", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: -1\n", nil},
		{"max_age signed", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: +5\n", nil},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", nil},
		{"bad mx", "version: STSv1\nmode: enforce\nmx: mx example\nmax_age: 1\n", nil},
		{"wildcard inside", "version: STSv1\nmode: enforce\nmx: mx.*.example.org\nmax_age: 1\n", nil},
		{"line without colon", "version: STSv1\nmode enforce\nmx: mx.example.org\nmax_age: 1\n", nil},
		{"HTML", "<html><body>not found</body></html>", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.text)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("Parse = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Mode != tc.want.Mode || got.MaxAge != tc.want.MaxAge || strings.Join(got.MX, ",") != strings.Join(tc.want.MX, ",") {
				t.Errorf("Parse = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	p := &Policy{Mode: Enforce, MX: []string{"mx1.example.org", "*.mail.example.org"}}
	for host, want := range map[string]bool{
		"mx1.example.org":        true,
		"MX1.Example.org.":       true,
		"a.mail.example.org":     true,
		"mail.example.org":       false, // the wildcard needs one label
		"a.b.mail.example.org":   false, // and only one
		"mx2.example.org":        false,
		"mx1.example.org.evil":   false,
		"evilmx1.example.org":    false,
		"a.mail.example.org.net": false,
	} {
		if got := p.Matches(host); got != want {
			t.Errorf("Matches(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestFindRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		txts   []string
		wantID string // "": an error
	}{
		{"one", []string{"v=STSv1; id=20260101T000000;"}, "20260101T000000"},
		{"others ignored", []string{"v=spf1 -all", "v=STSv1;id=abc"}, "abc"},
		{"extension field", []string{"v=STSv1; id=abc; ext=1"}, "abc"},
		{"none", []string{"v=spf1 -all"}, ""},
		{"two", []string{"v=STSv1; id=a", "v=STSv1; id=b"}, ""},
		{"no id", []string{"v=STSv1;"}, ""},
		{"id too long", []string{"v=STSv1; id=" + strings.Repeat("a", 33)}, ""},
		{"id not alnum", []string{"v=STSv1; id=a-b"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := FindRecord(tc.txts)
			if tc.wantID == "" {
				if err == nil {
					t.Fatalf("FindRecord = %q, want an error", id)
				}
				return
			}
			if err != nil || id != tc.wantID {
				t.Fatalf("FindRecord = %q, %v; want %q", id, err, tc.wantID)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmax_age: 86400\r\n")
	f.Add("version: STSv1\nmode: none\nmax_age: 0\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			return
		}
		// A parsed policy survives its own rendering unchanged.
		again, err := Parse(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("round trip of %q: %v %q", p.String(), err, again)
		}
	})
}

func FuzzFindRecord(f *testing.F) {
	f.Add("v=STSv1; id=20260101T000000;", "v=spf1 -all")
	f.Add("v=STSv1;id=a;id=b", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		id, err := FindRecord([]string{a, b})
		if err == nil && (id == "" || len(id) > 32 || !alnum(id)) {
			t.Fatalf("FindRecord(%q, %q) = %q, an invalid id", a, b, id)
		}
	})
}

func BenchmarkMatches(b *testing.B) {
	p := &Policy{Mode: Enforce, MX: []string{"mx1.example.org", "mx2.example.org", "*.mail.example.org"}}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Matches("a.mail.example.org") {
			b.Fatal("no match")
		}
	}
}
