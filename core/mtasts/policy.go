package mtasts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mode is a policy's mode.
type Mode string

// The modes of RFC 8461 section 3.2.
const (
	// Enforce refuses delivery to hosts that fail the policy.
	Enforce Mode = "enforce"
	// Testing reports failures and delivers anyway.
	Testing Mode = "testing"
	// None says the domain has withdrawn its policy.
	None Mode = "none"
)

// MaxAgeLimit is the largest max_age a policy may carry (RFC 8461 section
// 3.2: about one year).
const MaxAgeLimit = 31557600

// MaxPolicySize bounds the policy body a fetch reads (RFC 8461 section 3.3
// suggests 64 KiB).
const MaxPolicySize = 64 << 10

// Policy is one domain's parsed MTA-STS policy.
type Policy struct {
	// Mode is enforce, testing or none.
	Mode Mode `json:"mode"`
	// MX are the host patterns: "mx.example.org" or "*.example.org".
	MX []string `json:"mx"`
	// MaxAge is how long, in seconds, the policy may be cached.
	MaxAge int64 `json:"max_age"`
}

// Parse parses a policy file (RFC 8461 section 3.2): "key: value" lines
// ended by LF or CRLF. Unknown keys are ignored, as the RFC asks, but every
// known key must be valid: a policy that cannot be read exactly is no
// policy.
func Parse(text string) (*Policy, error) {
	p := &Policy{}
	seen := map[string]bool{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("mtasts: policy line %d: no colon in %q", n+1, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key != "mx" && seen[key] {
			return nil, fmt.Errorf("mtasts: policy line %d: %s repeated", n+1, key)
		}
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				return nil, fmt.Errorf("mtasts: policy version %q; want STSv1", value)
			}
		case "mode":
			switch Mode(value) {
			case Enforce, Testing, None:
				p.Mode = Mode(value)
			default:
				return nil, fmt.Errorf("mtasts: policy mode %q; want enforce, testing or none", value)
			}
		case "max_age":
			age, err := strconv.ParseInt(value, 10, 64)
			if err != nil || age < 0 || age > MaxAgeLimit || value[0] == '+' {
				return nil, fmt.Errorf("mtasts: policy max_age %q; want 0 to %d seconds", value, MaxAgeLimit)
			}
			p.MaxAge = age
		case "mx":
			if err := checkPattern(value); err != nil {
				return nil, err
			}
			p.MX = append(p.MX, strings.ToLower(strings.TrimSuffix(value, ".")))
		}
	}
	switch {
	case !seen["version"]:
		return nil, errors.New("mtasts: policy has no version")
	case !seen["mode"]:
		return nil, errors.New("mtasts: policy has no mode")
	case !seen["max_age"]:
		return nil, errors.New("mtasts: policy has no max_age")
	case p.Mode != None && len(p.MX) == 0:
		return nil, fmt.Errorf("mtasts: %s policy has no mx", p.Mode)
	}
	return p, nil
}

// checkPattern validates an mx pattern: a host name, optionally with "*."
// for its leftmost label.
func checkPattern(s string) error {
	host := strings.TrimPrefix(s, "*.")
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(labels) < 2 {
		return fmt.Errorf("mtasts: mx pattern %q is not a host name", s)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("mtasts: mx pattern %q is not a host name", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("mtasts: mx pattern %q is not a host name", s)
			}
		}
	}
	return nil
}

// Matches reports whether host matches one of the policy's mx patterns
// (RFC 8461 section 4.1): exactly, or "*.example.org" for exactly one label
// in front of example.org.
func (p *Policy) Matches(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if suffix, ok := strings.CutPrefix(pat, "*"); ok {
			first, rest, found := strings.Cut(host, ".")
			if found && first != "" && "."+rest == suffix {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// String renders the policy in its file format, as reports quote it.
func (p *Policy) String() string {
	var b strings.Builder
	b.WriteString("version: STSv1\r\nmode: ")
	b.WriteString(string(p.Mode))
	b.WriteString("\r\n")
	for _, mx := range p.MX {
		b.WriteString("mx: ")
		b.WriteString(mx)
		b.WriteString("\r\n")
	}
	b.WriteString("max_age: ")
	b.WriteString(strconv.FormatInt(p.MaxAge, 10))
	b.WriteString("\r\n")
	return b.String()
}

// ParseRecord parses the TXT record at _mta-sts.<domain> (RFC 8461 section
// 3.1) and returns its id. Fields are "key=value" separated by ";".
func ParseRecord(txt string) (id string, err error) {
	fields := strings.Split(txt, ";")
	if strings.TrimSpace(fields[0]) != "v=STSv1" {
		return "", fmt.Errorf("mtasts: record %q does not start with v=STSv1", txt)
	}
	for _, f := range fields[1:] {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("mtasts: record field %q has no value", f)
		}
		if k == "id" {
			if id != "" {
				return "", fmt.Errorf("mtasts: record %q has two ids", txt)
			}
			if v == "" || len(v) > 32 || !alnum(v) {
				return "", fmt.Errorf("mtasts: record id %q; want 1 to 32 letters or digits", v)
			}
			id = v
		}
	}
	if id == "" {
		return "", fmt.Errorf("mtasts: record %q has no id", txt)
	}
	return id, nil
}

// FindRecord picks the policy record among a name's TXT strings: records
// that do not start with "v=STSv1" are ignored, and several that do mean
// no policy (RFC 8461 section 3.1).
func FindRecord(txts []string) (id string, err error) {
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=STSv1") {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNoRecord
	case 1:
		return ParseRecord(found[0])
	}
	return "", fmt.Errorf("mtasts: %d STSv1 records; want one", len(found))
}

// ErrNoRecord says the domain publishes no _mta-sts TXT record.
var ErrNoRecord = errors.New("mtasts: no STSv1 record")

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
