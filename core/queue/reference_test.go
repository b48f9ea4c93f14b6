package queue_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"corriere/core/mailtest"
	"corriere/core/queue"
	"corriere/core/verp"
)

// TestReferenceHeader: every transaction leaves with a sealed reference
// header on top, naming the tenant, the message, the source IP and the
// provider, and the recipient when it is the transaction's only one; the
// message follows it unchanged.
func TestReferenceHeader(t *testing.T) {
	t.Parallel()
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, &sourceByLocal{}, func(o *queue.Options) { o.Reference = signer })
	w.mx("a.test", "mx.a.test", "127.0.0.21")
	rx := w.receiver("127.0.0.21", mailtest.Options{})
	// bob leaves from 127.0.0.3 alone; alice and carol share a transaction
	// from 127.0.0.2.
	meta := w.send("s@s.test", 0, "", "alice@a.test", "bob@a.test", "carol@a.test")
	w.waitDone(5 * time.Second)
	got := rx.Wait(t, 2, 5*time.Second)
	if len(got) != 2 {
		t.Fatalf("%d transactions, want 2", len(got))
	}
	for _, g := range got {
		line, rest, ok := bytes.Cut(g.Data, []byte("\r\n"))
		name, value, _ := strings.Cut(string(line), ": ")
		if !ok || name != verp.RefHeader {
			t.Fatalf("transaction to %v starts with %q, want the reference header", g.To, line)
		}
		if !bytes.HasPrefix(rest, []byte("From: <s@s.test>\r\n")) {
			t.Errorf("after the reference header:\n%s", rest)
		}
		ref, err := signer.Open(value)
		if err != nil {
			t.Fatalf("reference %q: %v", value, err)
		}
		want := verp.Reference{Tenant: "acme", MsgID: meta.ID, Index: -1, Source: "127.0.0.2", Provider: ref.Provider, Class: "transactional"}
		if len(g.To) == 1 {
			want = verp.Reference{Tenant: "acme", MsgID: meta.ID, Index: 1, Rcpt: "bob@a.test", Source: "127.0.0.3", Provider: ref.Provider, Class: "transactional"}
		}
		if ref != want || ref.Provider == "" {
			t.Errorf("transaction to %v: reference %+v, want %+v with a provider", g.To, ref, want)
		}
	}
}
