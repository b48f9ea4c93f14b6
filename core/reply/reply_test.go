package reply

import (
	"errors"
	"fmt"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		lines   []string
		want    Reply
		wantErr bool
	}{
		{lines: []string{"250 2.0.0 OK"}, want: Reply{Code: 250, Status: Status{2, 0, 0}, Text: "OK"}},
		{lines: []string{"250 OK"}, want: Reply{Code: 250, Text: "OK"}},
		{lines: []string{"220"}, want: Reply{Code: 220}},
		{lines: []string{"550-5.1.1 The email account", "550 5.1.1 does not exist."},
			want: Reply{Code: 550, Status: Status{5, 1, 1}, Text: "The email account\ndoes not exist."}},
		{lines: []string{"421 4.7.28 Gmail has detected an unusual rate"},
			want: Reply{Code: 421, Status: Status{4, 7, 28}, Text: "Gmail has detected an unusual rate"}},
		// An enhanced code whose class disagrees with the reply is text.
		{lines: []string{"550 4.1.1 odd"}, want: Reply{Code: 550, Text: "4.1.1 odd"}},
		{lines: []string{"25"}, wantErr: true},
		{lines: []string{"abc def"}, wantErr: true},
		{lines: []string{"250-a", "251 b"}, wantErr: true},
		{lines: []string{"250 a", "250 b"}, wantErr: true},
		{lines: []string{"250xa"}, wantErr: true},
		{lines: []string{"700 x"}, wantErr: true},
		{lines: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.lines), func(t *testing.T) {
			got, err := Parse(tt.lines)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error", tt.lines, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.lines, err)
			}
			if *got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.lines, *got, tt.want)
			}
		})
	}
}

func TestReplyClasses(t *testing.T) {
	r := New(451, "4.7.1", "greylisted")
	if !r.Temporary() || r.Permanent() || r.Success() {
		t.Errorf("451 classes wrong")
	}
	if got := r.String(); got != "451 4.7.1 greylisted" {
		t.Errorf("String = %q", got)
	}
	if got := New(550, "", "no").EffectiveStatus(); got != (Status{5, 0, 0}) {
		t.Errorf("EffectiveStatus = %v", got)
	}
	wrapped := fmt.Errorf("deliver: %w", r)
	if From(wrapped) != r {
		t.Errorf("From did not find the reply in the chain")
	}
	if From(errors.New("plain")) != nil {
		t.Errorf("From found a reply in a plain error")
	}
}

func TestParseStatus(t *testing.T) {
	for s, ok := range map[string]bool{"5.1.1": true, "4.7.28": true, "2.0.0": true, "5.7.509": true,
		"3.1.1": false, "5.1": false, "5.1.1.1": false, "5..1": false, "5.1234.1": false, "x.1.1": false} {
		if _, got := ParseStatus(s); got != ok {
			t.Errorf("ParseStatus(%q) ok = %v, want %v", s, got, ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("250 2.0.0 OK", "")
	f.Add("550-5.1.1 a", "550 5.1.1 b")
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a}
		if b != "" {
			lines = append(lines, b)
		}
		r, err := Parse(lines)
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 {
			t.Fatalf("accepted code %d", r.Code)
		}
		_ = r.String()
	})
}
