package luart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"corriere/core/message"
)

// FuzzClassifyRewrite feeds arbitrary messages, as any sender may submit
// them, through the default classify and rewrite: the hooks must decide or
// fail with a *HookError (the safe outcome), never panic, and a rewritten
// message must still be a message.
func FuzzClassifyRewrite(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join(testdataDir, "messages"))
	if err != nil {
		f.Fatal(err)
	}
	for _, de := range entries {
		raw, err := os.ReadFile(filepath.Join(testdataDir, "messages", de.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, "example")
		f.Add(raw, "clinic")
	}
	f.Add([]byte("From: \"=?utf-8?q?bad\" <@>\r\nSubject: =?x?y?z?=\r\nList-Id: <\r\n\r\n"), "")
	e := defaultEngine(f, Options{})
	f.Fuzz(func(t *testing.T, raw []byte, tenant string) {
		h, body, err := message.Parse(raw)
		if err != nil {
			return
		}
		m := &message.Message{ID: "fuzz", Header: h, Body: body, Tenant: tenant,
			Envelope: message.Envelope{Sender: "sender@example.com", Recipients: []message.Recipient{{Addr: "rcpt@example.net"}}}}
		ctx := context.Background()
		c, err := e.Classify(ctx, m)
		var he *HookError
		if err != nil {
			if !errors.As(err, &he) {
				t.Fatalf("Classify error is not a HookError: %v", err)
			}
			return
		}
		if _, ok := message.ParseClass(string(c.Class)); !ok {
			t.Fatalf("Classify returned class %q", c.Class)
		}
		m.Tenant, m.Class, m.Campaign = c.Tenant, c.Class, c.Campaign
		if err := e.Rewrite(ctx, m); err != nil {
			if !errors.As(err, &he) {
				t.Fatalf("Rewrite error is not a HookError: %v", err)
			}
			return
		}
		if _, _, err := message.Parse(m.Bytes()); err != nil {
			t.Fatalf("rewritten message does not parse: %v\n%s", err, m.Bytes())
		}
	})
}
