// Package address parses and normalises the mailboxes of SMTP envelopes
// (RFC 5321 section 4.1.2, with the UTF-8 extensions of RFC 6531).
//
// Parse accepts what a conforming client may send in MAIL FROM and RCPT TO
// and rejects everything else with an error that says what is wrong, so that
// ingest can answer with a precise 501/553. Domains are normalised to
// lower-case A-labels (IDNA), the form DNS lookups and queue keys need; local
// parts are kept exactly as sent, since only the receiving host may interpret
// them (RFC 5321 section 2.4).
package address

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxLocalLen  = 64
	maxDomainLen = 255
	maxPathLen   = 256
)

// Address is a parsed mailbox. The zero Address is the null reverse-path
// "<>" used by bounces.
type Address struct {
	// Local is the local part as sent, including quotes if it was quoted.
	Local string
	// Domain is the lower-case ASCII (A-label) domain, or an address literal
	// such as "[192.0.2.1]".
	Domain string
}

// IsNull reports whether a is the null reverse-path.
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// String returns "local@domain", or "" for the null address.
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// Error values wrapped by Parse; callers can test them with errors.Is.
var (
	ErrEmpty      = errors.New("empty address")
	ErrSyntax     = errors.New("address syntax error")
	ErrTooLong    = errors.New("address too long")
	ErrBadDomain  = errors.New("invalid domain")
	ErrNeedsUTF8  = errors.New("non-ASCII address without SMTPUTF8")
	ErrNoAtDomain = errors.New("address has no @domain")
)

// Options tune Parse.
type Options struct {
	// AllowUTF8 permits non-ASCII local parts and U-label domains, as a client
	// that declared SMTPUTF8 may send. The default value is false.
	AllowUTF8 bool
}

// Parse parses a mailbox without angle brackets, as go-smtp hands it over,
// for example `user@example.org` or `"john doe"@example.org`. The empty
// string is an error: callers that accept the null reverse-path check for it
// first.
func Parse(s string, opts Options) (Address, error) {
	if s == "" {
		return Address{}, ErrEmpty
	}
	if len(s) > maxPathLen {
		return Address{}, fmt.Errorf("%w: %d octets, the limit is %d", ErrTooLong, len(s), maxPathLen)
	}
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%w: not valid UTF-8", ErrSyntax)
	}
	if !opts.AllowUTF8 && !isASCII(s) {
		return Address{}, ErrNeedsUTF8
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, ErrNoAtDomain
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	d, err := NormalizeDomain(domain)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: d}, nil
}

// MustParse is Parse for addresses that are constants of the program or of a
// test; it panics on error.
func MustParse(s string) Address {
	a, err := Parse(s, Options{AllowUTF8: true})
	if err != nil {
		panic("address: " + err.Error())
	}
	return a
}

// Domain returns the lower-case domain of s, or "" when s does not parse.
func Domain(s string) string {
	a, err := Parse(s, Options{AllowUTF8: true})
	if err != nil {
		return ""
	}
	return a.Domain
}

func checkLocal(local string) error {
	if local == "" {
		return fmt.Errorf("%w: empty local part", ErrSyntax)
	}
	if len(local) > maxLocalLen {
		return fmt.Errorf("%w: local part is %d octets, the limit is %d", ErrTooLong, len(local), maxLocalLen)
	}
	if local[0] == '"' {
		return checkQuoted(local)
	}
	return checkDotAtom(local)
}

// checkDotAtom validates Dot-string = Atom *("." Atom).
func checkDotAtom(s string) error {
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return fmt.Errorf("%w: misplaced dot in local part %q", ErrSyntax, s)
	}
	for _, r := range s {
		if r == '.' || isAtext(r) {
			continue
		}
		return fmt.Errorf("%w: character %q not allowed in local part", ErrSyntax, r)
	}
	return nil
}

// checkQuoted validates Quoted-string = DQUOTE *QcontentSMTP DQUOTE.
func checkQuoted(s string) error {
	if len(s) < 2 || s[len(s)-1] != '"' {
		return fmt.Errorf("%w: unterminated quoted local part", ErrSyntax)
	}
	inner := s[1 : len(s)-1]
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\':
			i++
			if i == len(inner) || inner[i] < 32 || inner[i] > 126 {
				return fmt.Errorf("%w: bad escape in quoted local part", ErrSyntax)
			}
		case c == '"':
			return fmt.Errorf("%w: unescaped quote in local part", ErrSyntax)
		case c < 32 || c == 127:
			return fmt.Errorf("%w: control character in local part", ErrSyntax)
		}
	}
	return nil
}

// isAtext reports whether r is an RFC 5322 atext character, or a non-ASCII
// character (RFC 6531 UTF8-non-ascii).
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// NormalizeDomain validates a domain (or address literal) and returns it in
// lower-case A-label form.
func NormalizeDomain(domain string) (string, error) {
	if domain == "" {
		return "", fmt.Errorf("%w: empty domain", ErrBadDomain)
	}
	if domain[0] == '[' {
		return normalizeLiteral(domain)
	}
	domain = strings.TrimSuffix(domain, ".")
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadDomain, domain, err)
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomainLen {
		return "", fmt.Errorf("%w: domain is %d octets, the limit is %d", ErrTooLong, len(ascii), maxDomainLen)
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadDomain, domain, err)
		}
	}
	return ascii, nil
}

func checkLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return errors.New("label longer than 63 octets")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("label starts or ends with a hyphen")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("character %q not allowed in a domain", c)
		}
	}
	return nil
}

// normalizeLiteral validates "[IPv4]" and "[IPv6:addr]" (RFC 5321 4.1.3).
func normalizeLiteral(s string) (string, error) {
	if len(s) < 3 || s[len(s)-1] != ']' {
		return "", fmt.Errorf("%w: unterminated address literal %q", ErrBadDomain, s)
	}
	inner := s[1 : len(s)-1]
	if rest, ok := strings.CutPrefix(inner, "IPv6:"); ok || strings.HasPrefix(strings.ToLower(inner), "ipv6:") {
		if !ok {
			rest = inner[5:]
		}
		ip, err := netip.ParseAddr(rest)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 literal %q", ErrBadDomain, s)
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("%w: bad IPv4 literal %q", ErrBadDomain, s)
	}
	return "[" + ip.String() + "]", nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
