package spf

import (
	"errors"
	"fmt"
	"strings"
)

// macroString is a parsed macro-string (RFC 7208 section 7.1): literal text
// and macros in order, consecutive literals merged.
type macroString []macroToken

// macroToken is literal text (letter 0) or one macro.
type macroToken struct {
	literal string
	// letter is the macro letter in lower case; upper is true when it
	// was written in upper case, which URL-escapes the value.
	letter byte
	upper  bool
	// keep is how many right-hand parts to keep, 0 for all.
	keep    int
	reverse bool
	// delims are the characters the value is split on; "." when none
	// is given.
	delims string
}

// parseMacro parses a macro-string. The letters c, r and t are allowed only
// in an explanation (explain is true).
func parseMacro(s string, explain bool) (macroString, error) {
	var out macroString
	addLiteral := func(lit string) {
		if n := len(out); n > 0 && out[n-1].letter == 0 {
			out[n-1].literal += lit
			return
		}
		out = append(out, macroToken{literal: lit})
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("character %q in macro-string", c)
			}
			addLiteral(string(c))
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New("macro-string ends in %")
		}
		i++
		switch s[i] {
		case '%':
			addLiteral("%")
		case '_':
			addLiteral(" ")
		case '-':
			addLiteral("%20")
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, errors.New("unterminated macro")
			}
			tok, err := parseExpand(s[i+1:i+end], explain)
			if err != nil {
				return nil, err
			}
			out = append(out, tok)
			i += end
		default:
			return nil, fmt.Errorf("invalid macro %%%c", s[i])
		}
	}
	if len(out) == 0 {
		out = append(out, macroToken{})
	}
	return out, nil
}

// parseExpand parses the inside of %{...}: letter, digits, r, delimiters.
func parseExpand(body string, explain bool) (macroToken, error) {
	if body == "" {
		return macroToken{}, errors.New("empty macro")
	}
	tok := macroToken{letter: body[0] | 0x20, upper: 'A' <= body[0] && body[0] <= 'Z'}
	switch tok.letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !explain {
			return tok, fmt.Errorf("macro %%{%c} is only allowed in explanations", body[0])
		}
	default:
		return tok, fmt.Errorf("unknown macro letter %q", body[0])
	}
	rest := body[1:]
	n := 0
	for n < len(rest) && isDigit(rest[n]) {
		n++
	}
	if n > 0 {
		keep := 0
		for _, d := range rest[:n] {
			keep = keep*10 + int(d-'0')
			if keep > 1000 {
				keep = 1000
			}
		}
		if keep == 0 {
			return tok, errors.New("macro keeps zero parts")
		}
		tok.keep = keep
	}
	rest = rest[n:]
	if rest != "" && rest[0]|0x20 == 'r' {
		tok.reverse, rest = true, rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(".-+,/_=", rune(rest[i])) {
			return tok, fmt.Errorf("invalid macro delimiter %q", rest[i])
		}
	}
	tok.delims = rest
	if tok.delims == "" {
		tok.delims = "."
	}
	return tok, nil
}

// transform applies the token's delimiters, reversal, part count and
// escaping to a macro's value.
func (tok macroToken) transform(value string) string {
	parts := splitAny(value, tok.delims)
	if tok.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if tok.keep > 0 && tok.keep < len(parts) {
		parts = parts[len(parts)-tok.keep:]
	}
	out := strings.Join(parts, ".")
	if tok.upper {
		out = urlEscape(out)
	}
	return out
}

// splitAny splits s at every character of delims.
func splitAny(s, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// urlEscape escapes every octet outside the unreserved set of RFC 3986, as
// upper-case macro letters ask (section 7.3).
func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
