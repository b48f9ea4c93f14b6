// Package spf evaluates Sender Policy Framework records (RFC 7208): the
// check_host() function of section 4, with every mechanism (all, include, a,
// mx, ptr, ip4, ip6, exists), the redirect and exp modifiers, macros
// (section 7), and the processing limits of section 4.6.4.
//
// A record is parsed whole before it is evaluated, so a syntax error anywhere
// in it is a permerror even when an earlier mechanism would have matched.
// Terms that cause DNS queries (include, a, mx, ptr, exists, redirect) count
// towards a limit of 10 per evaluation, and lookups that find nothing (NXDOMAIN
// or no records of the asked type) towards a limit of 2; going over either is
// a permerror. An "mx" whose domain has more than 10 MX records is a
// permerror; a "ptr" and the %{p} macro look at the first 10 PTR names only.
//
// A DNS failure (SERVFAIL, timeout) is a temperror, except where the RFC says
// otherwise: in "ptr" and %{p} it makes the name not match, and for the
// explanation it falls back to the default one.
//
// Every Outcome says which mechanism decided, as a trail from the checked
// domain down through include and redirect, so that an operator sees why an
// IP passes or fails, and how many lookups the evaluation used.
//
// DNS goes through a Resolver; DNS implements it with github.com/miekg/dns
// against one configurable server. A Checker holds no state between checks
// and is safe for concurrent use.
package spf
