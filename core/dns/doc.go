// Package dns is Corriere's stub resolver: the MX, address, TXT and PTR
// lookups that delivery and policy need, asked of the configured recursive
// nameservers with github.com/miekg/dns rather than the system resolver.
//
// Lookups follow RFC 5321 section 5.1 for mail routing: MX hosts come back in
// preference order, hosts of equal preference in a fresh random order on every
// call, a domain without MX records but with an address is its own mail host
// (the implicit MX), and a lone "." MX target is a null MX (RFC 7505) that
// says the domain accepts no mail. A "." target among real hosts is ignored.
// Host names are returned in lower case without the trailing dot.
//
// Every failure is an *Error whose Kind tells delivery what to do: NotFound
// and NullMX are permanent, Temporary (SERVFAIL, REFUSED, timeouts, network
// errors, cancellation) is worth a retry. Error.Reply gives the matching SMTP
// reply for a DSN.
//
// Answers are cached by (name, type): positive answers for the smallest TTL
// of the records used, clamped to [5s, 24h]; negative answers (NXDOMAIN and
// NODATA) for the SOA minimum as RFC 2308 section 5 describes, clamped to
// [5s, 1h], or 60s without an SOA. Temporary failures are never cached. The
// cache holds at most Options.MaxEntries answers and evicts the least recently
// used. Concurrent lookups of the same name and type share one query.
//
// Queries carry EDNS0 with a 1232-byte UDP size and ask for recursion. A
// truncated (or unreadably cut) UDP reply is asked again over TCP. Servers are
// tried in turn, starting with the one that answered last, for
// Options.Attempts rounds, each attempt bounded by Options.Timeout. A reply
// whose question does not match the query is discarded.
//
// A Resolver is safe for concurrent use. It starts no long-lived goroutines:
// each query runs in a goroutine that ends when the query does, or as soon as
// every caller waiting for it has given up through its context.
package dns
