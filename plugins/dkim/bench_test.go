package dkim

import (
	"strings"
	"testing"

	"corriere/core/message"
)

// message5KB is a newsletter of about 5 KB: the test message's header and
// a body of 64 lines of 76 characters.
var message5KB = testMessage[:strings.Index(testMessage, "\r\n\r\n")+4] + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 64)

// BenchmarkSign signs a 5 KB message with one RSA-2048 key, one Ed25519
// key, and both:
//
//	go test -run XXX -bench Sign -count 5 ./plugins/dkim
func BenchmarkSign(b *testing.B) {
	for _, bc := range []struct{ name, rules string }{
		{"rsa-2048", `return { domains = { ["shop.test"] = { keys = {
  { selector = "r1", algorithm = "rsa-sha256", file = "keys/rsa1.pem" } } } } }`},
		{"ed25519", `return { domains = { ["shop.test"] = { keys = {
  { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } } }`},
		{"rsa-2048+ed25519", `return { domains = { ["shop.test"] = { keys = {
  { selector = "r1", algorithm = "rsa-sha256", file = "keys/rsa1.pem" },
  { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } } }`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := loadRules(b, bc.rules)
			h, body, err := message.Parse([]byte(message5KB))
			if err != nil {
				b.Fatal(err)
			}
			m := &message.Message{ID: "bench", Body: body}
			b.SetBytes(int64(len(message5KB)))
			b.ReportAllocs()
			for b.Loop() {
				m.Header = h.Copy()
				if _, err := r.Sign(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnsigned is the cost for a message that no key signs: choosing
// the domain from the From: field.
func BenchmarkUnsigned(b *testing.B) {
	r := loadRules(b, `return { domains = { ["shop.test"] = { keys = {
  { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } } }`)
	h, body, err := message.Parse([]byte(strings.Replace(message5KB, "news@shop.test", "news@other.test", 1)))
	if err != nil {
		b.Fatal(err)
	}
	m := &message.Message{ID: "bench", Header: h, Body: body}
	b.ReportAllocs()
	for b.Loop() {
		if s, _ := r.Sign(m); s.Domain != "" {
			b.Fatal("signed")
		}
	}
}
