// Package dkim is the DKIM signing plugin (ID "dkim"): an ingest stage that
// signs every outgoing message, after every other stage has changed it, with
// the keys that rules/dkim.lua names (RFC 6376; Ed25519 keys per RFC 8463).
//
// # Which key signs
//
// For each message the plugin picks one signing domain (d=):
//
//  1. a re-enveloped message (Message.Author set: the envelope sender is the
//     platform's bounce address, From: is the real author's) is signed by the
//     platform domain, so DKIM aligns with SPF on the platform's domain;
//  2. otherwise the domain of the From: field when rules/dkim.lua has keys for
//     it, or for a parent domain whose entry allows subdomains; an entry may
//     be restricted to some tenants, so that one tenant cannot have its mail
//     signed as another tenant's domain;
//  3. otherwise the tenant's own signing domain, if rules/dkim.lua gives one;
//  4. otherwise the message leaves unsigned: that is a choice of the policy,
//     logged at debug level, not an error.
//
// The domain signs with each of its active keys: one signature per active
// selector, RSA signatures on top, so a receiver that knows RSA only finds
// one first. Signatures use relaxed/relaxed canonicalization and the header
// list of rules/dkim.lua: fields signed when present, and fields oversigned
// (listed once more than they appear), so that a copy added on the way, such
// as a second From: or List-Unsubscribe:, breaks the signature instead of
// riding on it. The DKIM-Signature fields are put on top of the header; the
// rest of the header stays byte for byte as it was. A key that fails to sign
// makes Process return an error, so the client gets a temporary failure and
// retries; the message never leaves unsigned by accident.
//
// # Keys and reloads
//
// The plugin is an extension.Preparer: the policy engine has it read
// rules/dkim.lua for every new policy generation, at start and on every
// reload, in a fresh sandbox of core/luadata (no file access, no code
// loading, bounded string functions, a two-second deadline), with the key
// files it names (PEM, PKCS#8, or PKCS#1 for RSA). RSA keys under 2048
// bits, keys of the wrong algorithm and unknown fields are refused with
// "file:line: message" errors, and refuse the whole generation: the Lua
// policy and the keys in use stay together, and a policy the node accepted
// is one it can restart with. Key files readable by group or others are
// accepted with a warning. Without rules/dkim.lua the plugin signs nothing.
//
// The new set replaces the old atomically when the generation becomes
// current, so a message is signed entirely with the old set or entirely with
// the new one.
//
// Process is safe for concurrent use; signing allocates per message and
// holds no lock.
package dkim
