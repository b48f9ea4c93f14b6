package dkim_test

import (
	"fmt"
	"strings"

	"corriere/core/message"
	"corriere/plugins/dkim"
)

// ExampleLoad signs a message with the shipped rules/dkim.lua, whose demo
// domain negozio-esempio.it signs with an RSA and an Ed25519 key.
func ExampleLoad() {
	rules, err := dkim.Load("../../rules", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	h, body, err := message.Parse([]byte("From: Negozio <news@negozio-esempio.it>\r\n" +
		"To: mario@example.org\r\nSubject: Saldi\r\n\r\nFino al 50%.\r\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	m := &message.Message{ID: "example", Header: h, Body: body}
	s, err := rules.Sign(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Domain, s.Selectors, s.Why)
	for _, sig := range m.Header.Values("DKIM-Signature") {
		fmt.Println(strings.Fields(sig)[0])
	}
	// Output:
	// negozio-esempio.it [corriere corriere-ed] from
	// a=rsa-sha256;
	// a=ed25519-sha256;
}

// ExampleGenerateKey makes a key as `corriere dkim keygen` does.
func ExampleGenerateKey() {
	k, err := dkim.GenerateKey(dkim.KeyOptions{Domain: "example.com", Selector: "c2025e", Algorithm: dkim.Ed25519SHA256})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.FileName())
	fmt.Println(k.RecordName)
	fmt.Println(strings.HasPrefix(k.Record, "v=DKIM1; k=ed25519; p="), len(dkim.SplitTXT(k.Record)))
	// Output:
	// example.com.c2025e.ed25519.pem
	// c2025e._domainkey.example.com.
	// true 1
}
