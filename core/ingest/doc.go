// Package ingest is Corriere's SMTP submission server, built on go-smtp.
//
// It accepts mail only from authenticated tenants (AUTH PLAIN or LOGIN,
// after STARTTLS unless plain-text AUTH is explicitly allowed on loopback)
// and from configured client networks; it is never an open relay. A client
// that could authenticate but has not gets 530 5.7.0 at MAIL FROM; one that
// cannot (no TLS yet, no AUTH offered) gets 550 5.7.1 at RCPT TO.
//
// It speaks SIZE, PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
// STARTTLS and DSN, and stores the DSN parameters (RET, ENVID, NOTIFY,
// ORCPT) with the message. DATA containing a bare CR or LF (a line ending
// other than CRLF) is refused, so "\n.\n" and "\n.\r\n" can never end or
// split a message (SMTP smuggling).
//
// At RCPT TO, every extension.RecipientCheck (the suppression list, then
// the plugins') gives its verdict within Options.CheckTimeout; a recipient
// whose checks take longer is answered 451 4.3.0, so a slow check never
// holds a session. After DATA, the message passes the policy's Classify
// and Rewrite, then every extension.Stage (DKIM signing, for example),
// then is written to the spool; 250 is sent only after the spool has
// synced it to disk. A failing policy or stage, or a storage error,
// answers 451 so the client retries: an accepted message is never lost and
// never silently dropped. The one deliberate exception is a recipient a
// check drops (a suppressed address of a tenant that asked for it, see
// extension.Drop): it is accepted and not delivered, and an
// event.Suppressed says so.
//
// Each client (an IPv4 address or an IPv6 /64) holds a bounded number of
// sessions and opens them at a bounded rate; a silent client is closed
// early; a DATA transfer is cut (451 4.4.2, then the session closes) when a
// read waits longer than the idle timeout or the whole takes longer than
// the DATA timeout. AUTH failures lock the client and the user name out
// with exponential backoff (454 4.7.0, no password check), unknown users
// cost the same bcrypt comparison as known ones, and password checks run a
// bounded number at a time (see authguard.go). A tenant's sender_domains
// govern MAIL FROM, the null sender and every From: address.
//
// Every refusal carries a precise code, enhanced code and sentence, and is
// counted and logged; no reply repeats the client's text or names a socket
// address.
package ingest
