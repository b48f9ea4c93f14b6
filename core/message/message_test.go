package message

import (
	"bytes"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	tests := []struct {
		name, raw, body string
	}{
		{"simple", "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n", "body\r\n"},
		{"folded", "Subject: a\r\n  folded\r\nX-A: 1\r\n\r\nline1\r\nline2\r\n", "line1\r\nline2\r\n"},
		{"no body", "Subject: x\r\n\r\n", ""},
		{"large body", "Subject: x\r\n\r\n" + string(bytes.Repeat([]byte("0123456789\r\n"), 1000)), string(bytes.Repeat([]byte("0123456789\r\n"), 1000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.body {
				t.Errorf("body = %q, want %q", body, tt.body)
			}
			m := &Message{Header: h, Body: body}
			if got := string(m.Bytes()); got != tt.raw {
				t.Errorf("round trip = %q, want %q", got, tt.raw)
			}
			if m.Size() != len(tt.raw) {
				t.Errorf("Size = %d, want %d", m.Size(), len(tt.raw))
			}
		})
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		n                       Notify
		success, failure, delay bool
		str                     string
	}{
		{0, false, true, true, ""},
		{NotifyNever, false, false, false, "NEVER"},
		{NotifySuccess | NotifyFailure, true, true, false, "SUCCESS,FAILURE"},
		{NotifyDelay, false, false, true, "DELAY"},
	}
	for _, tt := range tests {
		if tt.n.Wants(NotifySuccess) != tt.success || tt.n.Wants(NotifyFailure) != tt.failure || tt.n.Wants(NotifyDelay) != tt.delay {
			t.Errorf("%v: Wants mismatch", tt.n)
		}
		if tt.n.String() != tt.str {
			t.Errorf("String = %q, want %q", tt.n.String(), tt.str)
		}
	}
}
