package bounce

import (
	"html"
	"strconv"
	"strings"

	"corriere/core/policy"
)

// maxDiagnostic bounds the diagnostic text kept per recipient, which also
// bounds the work of classifying it.
const maxDiagnostic = 4 << 10

// addrMatch is an address found in text, with its byte offsets.
type addrMatch struct {
	addr       string
	start, end int
}

// findAddresses returns the addresses in s, in order, at most 64. It
// accepts what bounces quote, deliberately narrower than RFC 5322: local
// parts of letters, digits and "._%+='-" (not the '/' and '?' of URLs), and
// domains of at least two labels ending in a top-level domain of letters.
// It is a linear scan, safe on hostile input.
func findAddresses(s string) []addrMatch {
	var out []addrMatch
	floor := 0 // addresses do not overlap
	for i := 0; i < len(s) && len(out) < 64; i++ {
		if s[i] != '@' {
			continue
		}
		start := i
		for start > floor && isLocalChar(s[start-1]) && i-start < 64 {
			start--
		}
		// Leading dots and quoting debris are never part of a mailbox.
		for start < i && strings.IndexByte(".='-", s[start]) >= 0 {
			start++
		}
		if start == i {
			continue
		}
		n := domainLen(s[i+1:])
		if n == 0 {
			continue
		}
		end := i + 1 + n
		out = append(out, addrMatch{addr: s[start:end], start: start, end: end})
		floor = end
		i = end - 1
	}
	return out
}

func isLocalChar(c byte) bool {
	return isLetter(c) || isDigit(c) || strings.IndexByte("._%+='-", c) >= 0
}

// domainLen returns the length of the domain at the start of s: labels of
// letters, digits and inner hyphens, at least two, the last of two or more
// letters; 0 when there is none.
func domainLen(s string) int {
	if len(s) > 255 {
		s = s[:255]
	}
	best := 0
	labels := 0
	pos := 0
	for pos < len(s) {
		// One label.
		j := pos
		for j < len(s) && j-pos < 63 && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '-') {
			j++
		}
		label := s[pos:j]
		if label == "" || label[0] == '-' {
			break
		}
		// A top-level domain is the leading letters of a label.
		letters := 0
		for letters < len(label) && isLetter(label[letters]) {
			letters++
		}
		if labels >= 1 && letters >= 2 {
			best = pos + letters
		}
		if label[len(label)-1] == '-' {
			break
		}
		labels++
		if j >= len(s) || s[j] != '.' {
			break
		}
		pos = j + 1
	}
	return best
}

// cleanAddress strips the decorations around an address: angle brackets,
// quotes, an "rfc822;" type prefix and trailing punctuation.
func cleanAddress(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ';'); i >= 0 && i < 12 {
		s = strings.TrimSpace(s[i+1:])
	}
	if as := findAddresses(s); len(as) > 0 {
		return as[0].addr
	}
	return strings.Trim(s, "<>\"' \t.:,")
}

// sameAddress compares addresses case-insensitively.
func sameAddress(a, b string) bool { return strings.EqualFold(a, b) }

// htmlToText renders HTML as plain lines, enough to read a bounce: tags
// that end a line become line breaks, style, script and head elements are
// dropped, entities are decoded. It runs in one pass (regular expressions
// over tags are slow on large hostile input).
func htmlToText(s string) string {
	lower := asciiLower(s)
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		lt := strings.IndexByte(s[i:], '<')
		if lt < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+lt])
		i += lt
		gt := strings.IndexByte(s[i:], '>')
		if gt < 0 {
			break
		}
		name := tagName(lower[i+1 : i+gt])
		i += gt + 1
		switch name {
		case "style", "script", "head":
			end := strings.Index(lower[i:], "</"+name)
			if end < 0 {
				i = len(s)
				continue
			}
			i += end
			if gt := strings.IndexByte(s[i:], '>'); gt >= 0 {
				i += gt + 1
			} else {
				i = len(s)
			}
		case "br", "p", "/p", "div", "/div", "tr", "/tr", "li", "/li", "hr", "table", "/table",
			"h1", "h2", "h3", "h4", "h5", "h6", "/h1", "/h2", "/h3", "/h4", "/h5", "/h6":
			b.WriteByte('\n')
		}
	}
	lines := strings.Split(html.UnescapeString(b.String()), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// tagName returns the lower-case name of the tag whose text (between "<"
// and ">") is given, with a leading "/" for a closing tag.
func tagName(inner string) string {
	inner = strings.TrimSpace(inner)
	closing := strings.HasPrefix(inner, "/")
	inner = strings.TrimLeft(inner, "/ ")
	end := 0
	for end < len(inner) && (isLetter(inner[end]) || isDigit(inner[end])) {
		end++
	}
	if closing {
		return "/" + inner[:end]
	}
	return inner[:end]
}

// asciiLower lower-cases ASCII letters only, so that offsets stay valid.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// collapseSpace joins the fields of s with single spaces.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// joinDiagnostic turns the lines of a diagnostic into one line: a
// multi-line SMTP reply ("550-5.7.1 a" / "550 5.7.1 b") is merged into one
// reply ("550 5.7.1 a b"), and runs of white space become one space.
func joinDiagnostic(lines []string) string {
	var b strings.Builder
	prevCode, prevStatus := "", ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		code, status, rest, ok := splitReplyLine(l)
		if ok && code == prevCode {
			// A continuation of the previous reply: keep only the text.
			if status != "" && status == prevStatus {
				l = rest
			} else {
				l = strings.TrimSpace(l[4:])
			}
		}
		if ok {
			prevCode, prevStatus = code, status
		} else {
			prevCode, prevStatus = "", ""
		}
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l)
		if b.Len() > maxDiagnostic {
			break
		}
	}
	s := collapseSpace(b.String())
	if len(s) > maxDiagnostic {
		s = s[:maxDiagnostic]
	}
	return s
}

// splitReplyLine recognises one line of an SMTP reply, "550-5.1.1 text" or
// "550 text".
func splitReplyLine(l string) (code, status, rest string, ok bool) {
	if len(l) < 4 || (l[3] != '-' && l[3] != ' ') || !isReplyCode(l[:3]) {
		return "", "", "", false
	}
	code = l[:3]
	rest = strings.TrimSpace(l[4:])
	if st, n := statusAt(rest, 0); n > 0 {
		status = st
		rest = strings.TrimSpace(rest[n:])
	}
	return code, status, rest, true
}

func isReplyCode(s string) bool {
	return len(s) == 3 && (s[0] == '2' || s[0] == '4' || s[0] == '5') &&
		s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// statusAt parses an enhanced status code ("5.1.1") at s[i:], returning it
// and its length, or 0 when there is none. A dotted quad such as an IP
// address is not a status.
func statusAt(s string, i int) (string, int) {
	if i >= len(s) || (s[i] != '2' && s[i] != '4' && s[i] != '5') {
		return "", 0
	}
	if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.') {
		return "", 0
	}
	j := i + 1
	for part := 0; part < 2; part++ {
		if j >= len(s) || s[j] != '.' {
			return "", 0
		}
		j++
		k := j
		for k < len(s) && isDigit(s[k]) && k-j < 3 {
			k++
		}
		if k == j || (k < len(s) && isDigit(s[k])) {
			return "", 0
		}
		j = k
	}
	if j < len(s) && s[j] == '.' && j+1 < len(s) && isDigit(s[j+1]) {
		return "", 0
	}
	return s[i:j], j - i
}

// findStatuses returns the enhanced status codes in s, in order.
func findStatuses(s string) []string {
	var out []string
	for i := 0; i < len(s) && len(out) < 16; i++ {
		if st, n := statusAt(s, i); n > 0 {
			out = append(out, st)
			i += n - 1
		}
	}
	return out
}

// findReplyCode returns the SMTP reply code a diagnostic quotes, with the
// enhanced status that follows it, if any. A failure (4xx, 5xx) is preferred
// to a success quoted from a transcript, and a code followed by a status of
// its class to a bare number.
func findReplyCode(s string) (int, string) {
	type cand struct {
		code   int
		status string
	}
	var cands []cand
	for i := 0; i+3 <= len(s) && len(cands) < 32; i++ {
		if !isReplyCode(s[i : i+3]) {
			continue
		}
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.' || isLetter(s[i-1]) || s[i-1] == '-' || s[i-1] == '=') {
			continue
		}
		if i+3 < len(s) && s[i+3] != ' ' && s[i+3] != '-' && s[i+3] != ':' {
			continue
		}
		code, _ := strconv.Atoi(s[i : i+3])
		j := i + 3
		for j < len(s) && (s[j] == ' ' || s[j] == '-' || s[j] == '#' || s[j] == ':') {
			j++
		}
		st := ""
		if got, n := statusAt(s, j); n > 0 && got[0] == s[i] {
			st = got
		}
		cands = append(cands, cand{code, st})
	}
	for _, pass := range []func(c cand) bool{
		func(c cand) bool { return c.code >= 400 && c.status != "" },
		func(c cand) bool { return c.code >= 400 && c.code%100 < 80 },
		func(c cand) bool { return c.code < 300 && c.status != "" },
		func(c cand) bool { return c.code >= 250 && c.code <= 252 },
	} {
		for _, c := range cands {
			if pass(c) {
				return c.code, c.status
			}
		}
	}
	return 0, ""
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isGenericStatus reports whether st says no more than its class (X.0.0).
func isGenericStatus(st string) bool { return strings.HasSuffix(st, ".0.0") }

// isVagueStatus reports whether st is a code MTAs put in the Status field
// when they only know the message waited too long or failed somewhere in
// the mail system, while the remote reply they quote is precise.
func isVagueStatus(st string) bool {
	switch st[1:] {
	case ".4.7", ".3.0", ".5.0", ".4.0":
		return true
	}
	return false
}

// preferStatus chooses between the status a report declares and the one
// its diagnostic text quotes. The declared one wins unless it is missing,
// generic (X.0.0) where the text is precise, or of a class that disagrees
// with the reply code while the text's agrees.
func preferStatus(declared, quoted string, replyCode int) string {
	switch {
	case declared == "":
		return quoted
	case quoted == "" || quoted == declared:
		return declared
	}
	if replyCode > 0 {
		class := byte('0' + replyCode/100)
		if declared[0] != class && quoted[0] == class {
			return quoted
		}
		if declared[0] == class && quoted[0] != class {
			return declared
		}
	}
	if declared[0] == quoted[0] && (isGenericStatus(declared) && !isGenericStatus(quoted) || isVagueStatus(declared)) {
		return quoted
	}
	return declared
}

// finishFailure fills what can be derived from a failure's own fields: the
// reply code and enhanced status quoted in the diagnostic, a clean
// recipient and a normalised action.
func finishFailure(f *policy.BounceReport) {
	f.Recipient = cleanAddress(f.Recipient)
	f.Diagnostic = collapseSpace(f.Diagnostic)
	if len(f.Diagnostic) > maxDiagnostic {
		f.Diagnostic = f.Diagnostic[:maxDiagnostic]
	}
	code, quoted := findReplyCode(f.Diagnostic)
	if f.ReplyCode == 0 {
		f.ReplyCode = code
	}
	if quoted == "" || code != f.ReplyCode {
		quoted = ""
		for _, st := range findStatuses(f.Diagnostic) {
			if f.ReplyCode == 0 || st[0] == byte('0'+f.ReplyCode/100) {
				quoted = st
				break
			}
		}
	}
	f.Status = preferStatus(f.Status, quoted, f.ReplyCode)
	f.Action = strings.ToLower(strings.TrimSpace(f.Action))
	switch f.Action {
	case "delivered", "relayed", "expanded", "deliverable":
		f.Action = "delivered"
	}
	f.FeedbackType = strings.ToLower(strings.TrimSpace(f.FeedbackType))
	f.RemoteMTA = strings.TrimSpace(f.RemoteMTA)
	if f.RemoteMTA == "" {
		f.RemoteMTA = remoteHostIn(f.Diagnostic)
	}
}
