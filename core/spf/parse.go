package spf

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// errSyntax marks a record that does not follow the grammar of RFC 7208
// section 4.6: the evaluation ends in permerror.
var errSyntax = errors.New("syntax error")

// qualifier is the result a matching mechanism gives.
type qualifier byte

// mechanism is one directive of a record.
type mechanism struct {
	// text is the directive as written, for the trail of an Outcome.
	text string
	qual qualifier
	// kind is the mechanism name in lower case: all, include, a, mx, ptr,
	// ip4, ip6 or exists.
	kind string
	// domain is the domain-spec, nil when the mechanism has none (the
	// current domain is used).
	domain macroString
	// net is the network of ip4 and ip6.
	net netip.Prefix
	// cidr4 and cidr6 are the prefix lengths of a and mx, 32 and 128 when
	// not given.
	cidr4, cidr6 int
}

// record is a parsed SPF record.
type record struct {
	mechanisms []mechanism
	// redirect and exp are the modifiers' domain-specs, nil when absent.
	redirect, exp macroString
}

// isSPF reports whether a TXT record is an SPF version 1 record: "v=spf1"
// in any case, alone or followed by a space.
func isSPF(txt string) bool {
	return len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ')
}

// parseRecord parses an SPF record, version tag included. Any error wraps
// errSyntax.
func parseRecord(txt string) (*record, error) {
	for i := 0; i < len(txt); i++ {
		if txt[i] < 0x20 || txt[i] > 0x7e {
			return nil, fmt.Errorf("%w: character %q at offset %d is not printable ASCII", errSyntax, txt[i], i)
		}
	}
	rec := &record{}
	for _, term := range strings.Split(txt[6:], " ") {
		if term == "" {
			continue
		}
		if name, value, ok := modifier(term); ok {
			if err := rec.addModifier(name, value); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", errSyntax, term, err)
			}
			continue
		}
		m, err := parseMechanism(term)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", errSyntax, term, err)
		}
		rec.mechanisms = append(rec.mechanisms, m)
	}
	return rec, nil
}

var modifierName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// modifier splits a term of the form name=value whose name is a valid
// modifier name.
func modifier(term string) (name, value string, ok bool) {
	name, value, found := strings.Cut(term, "=")
	if !found || !modifierName.MatchString(name) {
		return "", "", false
	}
	return strings.ToLower(name), value, true
}

func (rec *record) addModifier(name, value string) error {
	switch name {
	case "redirect", "exp":
		ms, err := parseDomainSpec(value)
		if err != nil {
			return err
		}
		target := &rec.redirect
		if name == "exp" {
			target = &rec.exp
		}
		if *target != nil {
			return fmt.Errorf("%s given twice", name)
		}
		*target = ms
	default:
		// Unknown modifiers are ignored (section 6), but their value
		// must still be a macro-string.
		if _, err := parseMacro(value, false); err != nil {
			return err
		}
	}
	return nil
}

// dualCIDR splits an a or mx argument into the domain-spec and the
// optional "/n" and "//n" suffixes.
var dualCIDR = regexp.MustCompile(`^(.*?)(?:/([0-9]+))?(?://([0-9]+))?$`)

func parseMechanism(term string) (mechanism, error) {
	m := mechanism{text: term, qual: '+', cidr4: 32, cidr6: 128}
	rest := term
	if strings.ContainsRune("+-~?", rune(rest[0])) {
		m.qual, rest = qualifier(rest[0]), rest[1:]
	}
	n := 0
	for n < len(rest) && ('a' <= rest[n]|0x20 && rest[n]|0x20 <= 'z' || n > 0 && '0' <= rest[n] && rest[n] <= '9') {
		n++
	}
	m.kind, rest = strings.ToLower(rest[:n]), rest[n:]
	if rest != "" && rest[0] != ':' && rest[0] != '/' {
		return m, fmt.Errorf("unexpected %q after %q", rest, m.kind)
	}
	var err error
	switch m.kind {
	case "all":
		if rest != "" {
			return m, errors.New("all takes no argument")
		}
	case "include", "exists":
		if !strings.HasPrefix(rest, ":") {
			return m, fmt.Errorf("%s needs a domain", m.kind)
		}
		m.domain, err = parseDomainSpec(rest[1:])
	case "ptr":
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return m, errors.New("ptr takes no prefix length")
			}
			m.domain, err = parseDomainSpec(rest[1:])
		}
	case "a", "mx":
		err = m.parseAddressArgs(rest)
	case "ip4", "ip6":
		err = m.parseNetwork(rest)
	default:
		return m, fmt.Errorf("unknown mechanism %q", m.kind)
	}
	return m, err
}

// parseAddressArgs parses [":" domain-spec] [ip4-cidr] ["/" ip6-cidr].
func (m *mechanism) parseAddressArgs(rest string) error {
	colon := strings.HasPrefix(rest, ":")
	if colon {
		rest = rest[1:]
	}
	parts := dualCIDR.FindStringSubmatch(rest)
	var err error
	if parts[2] != "" {
		if m.cidr4, err = prefixLength(parts[2], 32); err != nil {
			return err
		}
	}
	if parts[3] != "" {
		if m.cidr6, err = prefixLength(parts[3], 128); err != nil {
			return err
		}
	}
	switch {
	case colon:
		m.domain, err = parseDomainSpec(parts[1])
		return err
	case parts[1] != "":
		return fmt.Errorf("unexpected %q", parts[1])
	}
	return nil
}

// parseNetwork parses the ":" address ["/" length] of ip4 and ip6.
func (m *mechanism) parseNetwork(rest string) error {
	if !strings.HasPrefix(rest, ":") {
		return fmt.Errorf("%s needs an address", m.kind)
	}
	addr, length, hasLength := strings.Cut(rest[1:], "/")
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("invalid address %q", addr)
	}
	bits := 32
	if m.kind == "ip6" {
		bits = 128
	}
	if (bits == 32) != ip.Is4() {
		return fmt.Errorf("%q is not an %s address", addr, m.kind)
	}
	n := bits
	if hasLength {
		if n, err = prefixLength(length, bits); err != nil {
			return err
		}
	}
	m.net, err = ip.Prefix(n)
	return err
}

// prefixLength parses a CIDR length: decimal without leading zeros, at
// most max.
func prefixLength(s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n > max || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("invalid prefix length %q", s)
	}
	return n, nil
}

// parseDomainSpec parses a domain-spec: a macro-string that ends in a
// macro or in "." and a top label that is not all digits.
func parseDomainSpec(s string) (macroString, error) {
	if s == "" {
		return nil, errors.New("empty domain")
	}
	ms, err := parseMacro(s, false)
	if err != nil {
		return nil, err
	}
	last := ms[len(ms)-1]
	if last.letter != 0 {
		return ms, nil
	}
	// The literal text after the last macro must end in "." toplabel,
	// optionally followed by one more ".".
	tail := strings.TrimSuffix(last.literal, ".")
	dot := strings.LastIndexByte(tail, '.')
	if dot < 0 || !validTopLabel(tail[dot+1:]) {
		return nil, fmt.Errorf("%q does not end in a valid top-level label", s)
	}
	return ms, nil
}

// validTopLabel reports whether l is a toplabel of RFC 7208: letters,
// digits and inner hyphens, with a letter or a hyphen somewhere, so that an
// IP address is not taken for a domain.
func validTopLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	special := false
	for i := 0; i < len(l); i++ {
		c := l[i] | 0x20
		switch {
		case 'a' <= c && c <= 'z', l[i] == '-':
			special = true
		case '0' <= l[i] && l[i] <= '9':
		default:
			return false
		}
	}
	return special
}

// validDomain reports whether name can be checked at all (section 4.3): a
// fully qualified name of labels of 1 to 63 octets, not a literal.
func validDomain(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if len(name) > 253 || strings.HasPrefix(name, "[") {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}
