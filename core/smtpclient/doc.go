// Package smtpclient is Corriere's outbound SMTP client: it speaks to a
// remote MX on behalf of the delivery engine.
//
// Dial connects (optionally from a bound source IP), reads the greeting,
// introduces itself with EHLO (falling back to HELO when EHLO is refused
// permanently) and upgrades to TLS with STARTTLS when the server offers it
// and the options allow it (RFC 3207). In the default opportunistic mode the
// certificate is not verified (RFC 7435: encryption against passive
// eavesdroppers is better than none); TLSRequired verifies it and fails
// otherwise. A failed TLS handshake leaves the connection unusable, so Dial
// returns an *Error wrapping ErrTLSFailed, and the caller may redial that
// host with TLS disabled.
//
// Send runs one mail transaction. When the server advertises PIPELINING
// (RFC 2920) it writes MAIL, every RCPT and DATA in one flush and then reads
// the replies in order; otherwise it waits for each reply before the next
// command. Extension parameters (SIZE, BODY=8BITMIME, SMTPUTF8, and the DSN
// parameters RET, ENVID, NOTIFY and ORCPT of RFC 3461) are sent only when
// the server advertised the extension. Message content is dot-stuffed and
// its line endings normalised to CRLF while it streams to the socket, so a
// bare CR or LF never reaches the next hop (SMTP smuggling).
//
// Every reply is kept in the Result, per recipient and in envelope order,
// with its RFC 3463 enhanced status code parsed. A rejection is a reply, not
// an error: Send returns an error only when the connection failed (I/O error,
// timeout, cancelled context, unparsable reply, or a 421 reply, after which
// the server closes). The client is then Broken and must be discarded; the
// replies already in the Result remain final. After any other outcome the
// connection is back in its initial state (the client sends RSET after a
// failed transaction) and Send may be called again, so one connection can
// carry many messages.
//
// Each command's reply must arrive within the option's timeout (RFC 5321
// section 4.5.3.2 gives the defaults) and before the context's deadline;
// cancelling the context aborts the I/O in progress and breaks the client.
// A Client is not safe for concurrent use: one goroutine drives one
// connection.
package smtpclient
