package queue

import "corriere/core/verp"

// Referencer seals the reference header of a transaction (see
// verp.Reference); *verp.Signer implements it.
type Referencer interface {
	Seal(r verp.Reference) string
}

// reference returns the reference header field of job j ("X-Corriere-Ref:
// ...\r\n") when Options.Reference is set, or nil: the tenant, the
// message and its class, the source IP and the provider, and the
// recipient when the transaction carries only one (always so for VERP
// mail). It is sent before the content, after DKIM signed the message at
// ingest, because only the transaction knows the recipient, the source
// and the provider; a field on top that the signature does not list
// leaves it valid, and the field is authenticated by its own seal. The
// client writes it ahead of the stored message, which is not copied.
func (q *Queue) reference(j *job) []byte {
	if q.opts.Reference == nil {
		return nil
	}
	m := j.msg.meta
	r := verp.Reference{Tenant: m.Tenant, MsgID: m.ID, Index: -1, Source: j.route.Source, Provider: j.provider, Class: string(m.Class)}
	if len(j.items) == 1 {
		r.Index, r.Rcpt = j.items[0].entry.Index, j.items[0].entry.Rcpt.Addr
	}
	return []byte(verp.RefHeader + ": " + q.opts.Reference.Seal(r) + "\r\n")
}
