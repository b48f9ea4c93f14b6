package smtpclient

import (
	"context"
	"testing"
)

// TestSendHeaderFields: Envelope.Header goes before the content, unchanged;
// header bytes that are not whole CRLF lines, or that would need
// dot-stuffing, are refused before anything is sent.
func TestSendHeaderFields(t *testing.T) {
	k := startSink(t, nil)
	c, err := Dial(context.Background(), k.addr, "mx.test", testOptions())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	env := Envelope{From: "sender@example.org", Rcpts: []Rcpt{{Addr: "first@example.net"}},
		Header: []byte("X-Corriere-Ref: 1.abc\r\nX-Other: two\r\n")}
	res, err := c.Send(context.Background(), env, []byte("Subject: one\r\n\r\n.dot\r\n"))
	if err != nil || res.Outcome(0) == nil || res.Outcome(0).Code != 250 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	for _, bad := range []string{"X-Ref: 1", "X-Ref: 1\n", ".X-Ref: 1\r\n", "X-Ref: 1\r\n.\r\n", "X-Ref: 1\rX: 2\r\n"} {
		env.Header = []byte(bad)
		res, err := c.Send(context.Background(), env, []byte("Subject: two\r\n\r\nx\r\n"))
		if err == nil || res.Mail != nil {
			t.Errorf("header %q: Send = %+v, %v; want it refused before MAIL", bad, res, err)
		}
	}
	if err := c.Quit(context.Background()); err != nil {
		t.Errorf("Quit: %v", err)
	}
	got := k.messages()
	want := "X-Corriere-Ref: 1.abc\r\nX-Other: two\r\nSubject: one\r\n\r\n.dot\r\n"
	if len(got) != 1 {
		t.Fatalf("sink received %d messages, want 1", len(got))
	}
	if string(got[0].data) != want {
		t.Errorf("sink received %q, want %q", got[0].data, want)
	}
}
