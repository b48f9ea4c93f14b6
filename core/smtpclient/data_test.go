package smtpclient

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"corriere/core/reply"
)

func TestWriteData(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ".\r\n"},
		{"CRLF", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"no final line ending", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare CR", "a\rb\r", "a\r\nb\r\n.\r\n"},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
		{"LF CR", "a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
		{"leading dot", ".a\r\n..b\r\n.\r\nc.d\r\n", "..a\r\n...b\r\n..\r\nc.d\r\n.\r\n"},
		{"dot after bare LF", "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"dot after bare CR", "a\r.\r\n", "a\r\n..\r\n.\r\n"},
		{"smuggling attempt", "a\r\n\n.\r\nMAIL FROM:<x>\r\n", "a\r\n\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
		{"smuggling with bare LF dot", "a\n.\n", "a\r\n..\r\n.\r\n"},
		{"only dot", ".", "..\r\n.\r\n"},
		{"blank lines", "\r\n\r\n", "\r\n\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := bufio.NewWriterSize(&b, 16)
			writeData(w, []byte(tt.in))
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("writeData(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzWriteData(f *testing.F) {
	f.Add([]byte("a\r\n.b\nc\rd"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		writeData(w, in)
		w.Flush()
		out := b.String()
		body, ok := strings.CutSuffix(out, ".\r\n")
		if !ok {
			t.Fatalf("%q does not end with the terminator", out)
		}
		if body != "" && !strings.HasSuffix(body, "\r\n") {
			t.Fatalf("%q: content does not end with CRLF", out)
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(body, "\r\n"), "\r\n") {
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("%q: bare CR or LF in line %q", out, line)
			}
			if line == "." {
				t.Fatalf("%q: unstuffed lone dot", out)
			}
		}
		// Undoing the stuffing gives the input with normalised line endings.
		var want strings.Builder
		for i := 0; i < len(in); i++ {
			switch {
			case in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n':
				// The LF that follows ends the line.
			case in[i] == '\r' || in[i] == '\n':
				want.WriteString("\r\n")
			default:
				want.WriteByte(in[i])
			}
		}
		if len(in) > 0 && in[len(in)-1] != '\r' && in[len(in)-1] != '\n' {
			want.WriteString("\r\n")
		}
		var unstuffed strings.Builder
		for line := range strings.SplitAfterSeq(body, "\r\n") {
			unstuffed.WriteString(strings.TrimPrefix(line, "."))
		}
		if unstuffed.String() != want.String() {
			t.Fatalf("writeData(%q) = %q; unstuffed %q, want %q", in, out, unstuffed.String(), want.String())
		}
	})
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []reply.Reply
		wantErr bool // after the replies in want
	}{
		{name: "one line", in: "250 2.1.0 ok\r\n", want: []reply.Reply{{Code: 250, Status: reply.Status{Class: 2, Subject: 1}, Text: "ok"}}},
		{name: "bare LF", in: "250 ok\n", want: []reply.Reply{{Code: 250, Text: "ok"}}},
		{name: "code only", in: "250\r\n", want: []reply.Reply{{Code: 250}}},
		{name: "multi-line", in: "550-5.1.1 no\r\n550-5.1.1 such\r\n550 5.1.1 user\r\n",
			want: []reply.Reply{{Code: 550, Status: reply.Status{Class: 5, Subject: 1, Detail: 1}, Text: "no\nsuch\nuser"}}},
		{name: "several replies", in: "250 a\r\n550 b\r\n354 c\r\n",
			want: []reply.Reply{{Code: 250, Text: "a"}, {Code: 550, Text: "b"}, {Code: 354, Text: "c"}}},
		{name: "EOF mid-reply", in: "250-a\r\n", wantErr: true},
		{name: "EOF mid-line", in: "250 a", wantErr: true},
		{name: "code changes", in: "250-a\r\n251 b\r\n", wantErr: true},
		{name: "no code", in: "hello\r\n", wantErr: true},
		{name: "code out of range", in: "199 x\r\n", wantErr: true},
		{name: "longest line", in: "250 " + strings.Repeat("x", maxReplyLine-6) + "\r\n",
			want: []reply.Reply{{Code: 250, Text: strings.Repeat("x", maxReplyLine-6)}}},
		{name: "line too long", in: "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", wantErr: true},
		{name: "most lines", in: strings.Repeat("250-x\r\n", maxReplyLines-1) + "250 x\r\n",
			want: []reply.Reply{{Code: 250, Text: strings.TrimSuffix(strings.Repeat("x\n", maxReplyLines), "\n")}}},
		{name: "too many lines", in: strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newReplyReader(strings.NewReader(tt.in))
			for _, want := range tt.want {
				got, err := rr.read()
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if *got != want {
					t.Errorf("read = %+v, want %+v", *got, want)
				}
			}
			if _, err := rr.read(); err == nil {
				t.Errorf("read after the expected replies succeeded")
			} else if !tt.wantErr && !strings.Contains(err.Error(), "connection closed") {
				t.Errorf("read at the end: %v, want connection closed", err)
			}
		})
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte("220 mx.test ESMTP\r\n"))
	f.Add([]byte("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n"))
	f.Add([]byte("550-5.1.1 a\r\n550 5.1.1 b\r\n451 4.7.1 c\n"))
	f.Add([]byte("250-\r\n250"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := newReplyReader(bytes.NewReader(in))
		// Every reply consumes at least four bytes ("250\n"), so this
		// loop ends; it bounds the test should that ever change.
		for range len(in)/4 + 1 {
			r, err := rr.read()
			if err != nil {
				return
			}
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("accepted code %d", r.Code)
			}
			if strings.Count(r.Text, "\n") >= maxReplyLines {
				t.Fatalf("accepted a reply of more than %d lines", maxReplyLines)
			}
			parseExtensions(r)
		}
		if _, err := rr.read(); err == nil {
			t.Fatalf("read more replies than the input can hold")
		}
	})
}

func TestXtext(t *testing.T) {
	tests := []struct {
		name, in, want string
		write          func(*bufio.Writer, string)
	}{
		{"xtext plain", "a@example.org", "a@example.org", writeXtext},
		{"xtext specials", "a+b=c d", "a+2Bb+3Dc+20d", writeXtext},
		{"xtext 8-bit", "é", "+C3+A9", writeXtext},
		{"utf-8-addr-xtext", "jörg+x=y\\z@例え.jp", `j\x{F6}rg\x{2B}x\x{3D}y\x{5C}z@\x{4F8B}\x{3048}.jp`, writeUTF8AddrXtext},
		{"utf-8-addr-xtext control", "a\tb", `a\x{09}b`, writeUTF8AddrXtext},
		{"ORCPT rfc822", "rfc822;a+b@example.org", "rfc822;a+2Bb@example.org", writeORCPT},
		{"ORCPT rfc822 non-ASCII", "rfc822;jörg@example.org", `utf-8;j\x{F6}rg@example.org`, writeORCPT},
		{"ORCPT utf-8", "UTF-8;a=b@example.org", `utf-8;a\x{3D}b@example.org`, writeORCPT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			tt.write(w, tt.in)
			w.Flush()
			if b.String() != tt.want {
				t.Errorf("encode(%q) = %q, want %q", tt.in, b.String(), tt.want)
			}
		})
	}
}
