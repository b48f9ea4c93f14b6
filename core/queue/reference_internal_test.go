package queue

import (
	"testing"

	"corriere/core/dns"
	"corriere/core/policy"
	"corriere/core/spool"
	"corriere/core/verp"
)

// BenchmarkReference measures what the reference header costs one
// transaction: sealing it (the message is not copied).
func BenchmarkReference(b *testing.B) {
	signer, err := verp.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	q := &Queue{opts: Options{Reference: signer}}
	meta := &spool.Meta{ID: "1hre6odi2edg3dal2001", Tenant: "negozio", Class: "newsletter"}
	j := &job{msg: &msgInfo{meta: meta}, provider: "gmail", route: policy.Route{Source: "192.0.2.7"}, mx: &dns.MXResult{},
		items: []*item{{entry: &spool.Entry{MsgID: meta.ID, Index: 3}}}}
	j.items[0].entry.Rcpt.Addr = "mario.verdi@gmail.com"
	b.ReportAllocs()
	for b.Loop() {
		q.reference(j)
	}
}
