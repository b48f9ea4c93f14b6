// Package sim is a simulated mail internet on loopback: an authoritative DNS
// server and the inbound MX servers of invented mailbox providers that
// greylist, rate-limit, reject, tarpit, bounce after accepting and send
// complaint reports the way real providers do.
//
// A World describes the providers: their domains, the MX hosts of each domain
// (name, preference and an address in 127.0.0.0/8 outside 127.0.0.0/24, so it
// never collides with 127.0.0.1 or the MTA's source addresses 127.0.0.2–9),
// and the behaviour of each provider. Start serves a World: DNS on
// Options.DNSAddr, and one SMTP listener per live MX host, every one on the
// same port (Options.MXPort) of its own address, so an MTA that dials
// "MX address:port" reaches the right simulated server. The file
// testdata/sim/world.json models Gmail, Microsoft, Yahoo, Libero, TIM, a
// self-hosted office domain and the awkward cases (nolisting, null MX,
// NXDOMAIN, a tarpit).
//
// Behaviours, each configured per provider:
//
//   - Connection limits: a source address with too many open connections
//     gets "421 4.7.0" at greeting and the connection is closed.
//   - Blocklisting: listed source addresses get "554 5.7.1 ... blocked using
//     ..." at greeting or at RCPT.
//   - Rate limits: more than N MAIL transactions per minute from one source
//     address get the provider's deferral text (Gmail 421 4.7.28, Microsoft
//     451 4.7.500, Yahoo 421 4.7.0 [TSS04], ...).
//   - Recipients: local parts starting with configured prefixes are unknown
//     (550 5.1.1), over quota (452 4.2.2) or refused as spam (550 5.7.1); a
//     marker in the message (Subject or body) is refused as spam after DATA.
//   - Greylisting: the first attempt of each (sender, recipient, source
//     address or /24) triplet is deferred with 451 4.7.1 until a delay has
//     passed since that first attempt.
//   - Accept-then-bounce: recipients with a configured prefix are accepted,
//     and after a delay a bounce (an RFC 3464 DSN, or a qmail-like or
//     Exchange-like plain-text notice) is mailed to the envelope sender.
//   - Complaints: a share of accepted recipients, drawn from a generator
//     seeded by Options.Seed, produce an RFC 5965 ARF abuse report mailed to
//     the provider's feedback-loop address.
//   - Tarpit: every reply is delayed by a fixed duration.
//   - STARTTLS with a self-signed ECDSA P-256 certificate made at Start.
//   - Outbound TLS policies, per domain: an MTA-STS policy (mta_sts)
//     naming the domain's MX hosts, served over HTTPS on 127.0.0.1 at
//     Options.PolicyPort with the same certificate, and DANE (dane): TLSA
//     records for the certificate's key, whose answers, and the domain's
//     MX answers, carry the AD bit when the query asks for DNSSEC, as from
//     a validating resolver. A provider may be attacked: "strip-starttls"
//     hides STARTTLS, "wrong-certificate" presents another certificate.
//     CertificatePEM, PolicyPort and DNSAddr are what an MTA needs to
//     verify them (corriere sim prints the flags).
//
// Every reply that closes the session (421) is followed by closing the
// connection, as real servers do.
//
// Asynchronous mail (bounces and complaints) is delivered over SMTP to port
// Options.ReturnPort of the MX of the recipient's domain, looked up in the
// simulator's own DNS, from the reporting provider's first MX address. Each
// is tried up to three times; a ReturnPort of 0 disables asynchronous mail.
//
// What the receivers accepted is kept in memory, bounded: Deliveries returns
// the most recent accepted recipients with the message header (not the
// body), and Stats returns counters per provider. All methods of Sim are safe
// for concurrent use. Close stops every listener and goroutine; tests call it
// from t.Cleanup.
package sim
