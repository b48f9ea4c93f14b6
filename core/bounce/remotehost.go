package bounce

import "strings"

// remoteHostIn returns the name of the server that answered, as a
// bounce's prose names it: Postfix's "host mx.example.com[192.0.2.1]
// said:", Exim's "host mx.example.com [192.0.2.1]:", Sendmail's "while
// talking to mx.example.com.:". It returns "" when the text names no host
// name (an address alone says nothing about the provider).
func remoteHostIn(diag string) string {
	lower := strings.ToLower(diag)
	for _, lead := range []string{"host ", "while talking to ", "remote server ", "remote host "} {
		for from := 0; from < len(lower); {
			i := strings.Index(lower[from:], lead)
			if i < 0 {
				break
			}
			start := from + i + len(lead)
			from = start
			end := start
			for end < len(lower) && isHostByte(lower[end]) {
				end++
			}
			name := strings.Trim(lower[start:end], ".-")
			if isHostName(name) {
				return name
			}
		}
	}
	return ""
}

func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || isDigit(c) || c == '.' || c == '-' || c == '_'
}

// isHostName reports whether s looks like a domain name: at least two
// labels, the last one alphabetic (not an IPv4 address).
func isHostName(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return false
	}
	for _, c := range []byte(s[dot+1:]) {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// hostOf returns the host name of a Remote-MTA value such as
// "mx.example.com", "mx.example.com [192.0.2.1]" or "mx.example.com.".
func hostOf(remote string) string {
	remote = strings.TrimSpace(remote)
	if i := strings.IndexAny(remote, " [("); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(remote, ".")
}

// carrierVerdict returns the sentence in which a Japanese mobile carrier's
// bounce (au's EZweb, "The user(s) account is disabled.") states the
// reason for every recipient, ahead of the recipients and of a reply that
// may say something vaguer ("550 user unknown"); "" when there is none.
func carrierVerdict(errText string) string {
	for _, line := range strings.Split(errText, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "The user(s) ") && len(line) < 200 {
			return line
		}
	}
	return ""
}
