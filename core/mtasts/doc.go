// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (RFC 8461): a recipient domain announces with a TXT record at
// _mta-sts.<domain> that it publishes a policy, and serves the policy over
// HTTPS at https://mta-sts.<domain>/.well-known/mta-sts.txt. The policy
// names the MX hosts allowed to receive the domain's mail and a mode:
// "enforce" (deliver only to those hosts, over TLS with a certificate valid
// for the host, or not at all), "testing" (report failures, deliver anyway)
// or "none".
//
// Parse reads a policy strictly: a missing or repeated version, mode or
// max_age, an unknown mode, a max_age out of range or an enforce or testing
// policy without mx patterns is an error, never a weaker policy. The fetch
// validates the web server's certificate for mta-sts.<domain>, follows no
// redirect, and bounds the body (64 KiB) and the time it takes.
//
// A Cache keeps each domain's policy for its max_age, persisted in a small
// JSON file beside the spool so that a restart does not refetch every
// policy. A policy is fetched again when the TXT record's id changes, and
// Run refreshes the policies about to expire in the background. When a
// refetch fails the cached policy stays in force until it expires (RFC 8461
// section 5.1): an attacker who blocks the policy server cannot downgrade a
// domain that was seen once.
package mtasts
