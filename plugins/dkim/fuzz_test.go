package dkim

import (
	"testing"

	"corriere/core/message"
)

// FuzzSign signs arbitrary submitted content: choosing the domain from an
// untrusted From: field must not panic, and whatever is signed must verify.
func FuzzSign(f *testing.F) {
	for _, seed := range []string{
		testMessage,
		"From: a@shop.test\r\n\r\n",
		"From: =?UTF-8?B?w6k=?= <a@Sub.Shop.Test>, b@other.test\r\nFrom: c@shop.test\r\n\r\nx",
		"From: \"a@shop.test\" <b@[127.0.0.1]>\r\n\r\n",
		"From: group: a@shop.test, b@shop.test;\r\n\r\n",
		"From:\r\n\tfolded@shop.test\r\nSubject: \xff\xfe\r\n\r\n\r\n\r\n",
		"From: a@xn--80ak6aa92e.shop.test\n\nbare\nLF\n",
	} {
		f.Add(seed)
	}
	r := loadRules(f, `return { domains = { ["shop.test"] = { subdomains = true, keys = {
  { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } } }`)
	lookup := dnsOf(r)
	f.Fuzz(func(t *testing.T, raw string) {
		h, body, err := message.Parse([]byte(raw))
		if err != nil {
			return
		}
		m := &message.Message{ID: "fuzz", Header: h, Body: body}
		s, err := r.Sign(m)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if s.Domain == "" {
			return
		}
		vs := verify(t, m.Bytes(), lookup)
		if len(vs) == 0 || vs[0].Err != nil {
			t.Fatalf("our signature does not verify: %+v\n%q", vs, m.Bytes())
		}
	})
}
