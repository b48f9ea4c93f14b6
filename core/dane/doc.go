// Package dane authenticates SMTP servers with DANE (RFC 7672): TLSA
// records, published at _25._tcp.<mx host> in a DNSSEC-signed zone, name
// the certificate or the trust anchor an MX host must present.
//
// A Resolver asks a configured validating resolver and trusts an answer
// only when it carries the AD (authenticated data) bit. The AD bit is only
// as trustworthy as the path to the resolver that set it, so the resolver
// must be one the node trusts: a validating resolver on the same machine
// (unbound, Knot Resolver, BIND with dnssec-validation) reached over the
// loopback, or one on a network link the operator controls. A public
// resolver reached over the internet is not such a resolver: anyone on
// the path can set the bit. Without a configured resolver DANE is off.
//
// DANE applies to an MX host only when the domain's MX records and the
// host's TLSA records are both authenticated. An authenticated denial
// (NXDOMAIN or NODATA with AD) means the host has no TLSA records; a
// lookup that fails otherwise (SERVFAIL, timeout, an unsigned answer to a
// signed domain's TLSA query) makes the host unusable for now, so that an
// attacker who blocks the lookup cannot downgrade the delivery.
//
// Verify checks a TLS connection against the usable records: DANE-EE(3)
// matches the server's own certificate or public key, without name or
// date checks (RFC 7672 section 3.1.1); DANE-TA(2) matches a certificate
// of the chain the server sent, which must then sign the server's
// certificate for the MX host name (section 3.1.2). Selectors 0 (full
// certificate) and 1 (public key) and matching types 0 (exact), 1
// (SHA-256) and 2 (SHA-512) are supported; PKIX-TA(0) and PKIX-EE(1)
// records are unusable in SMTP (section 3.1.3) and ignored.
package dane
