package bounce

import "strings"

// separatorWords mark a line that introduces the returned message when the
// line is drawn as a separator ("----- Original message -----").
var separatorWords = []string{
	"original message", "returned message", "unsent message", "copy of", "header", "message follows",
	"rejected message", "undelivered message", "message text", "original mail",
}

// separatorPhrases introduce the returned message wherever they appear.
var separatorPhrases = []string{
	"below this line is a copy of the message",
	"this is a copy of the message",
	"original message follows",
	"unsent message follows",
	"message headers follow",
	"original message header",
	"headers of the original message",
	"original message headers",
	"the original message headers",
	"content-type: message/rfc822",
	"content-type: text/rfc822-headers",
	"--- the header of the original message",
	"original mail as follows",
	"original message:",
	"below this line is a copy of the mail header",
	"below the next line is a copy of the message",
	"mensaje original adjunto",
	"included is a copy of the message header",
	"tes de message d'origine",
	"intestazioni originali del messaggio",
	"ursprungshuvuden:",
	"enclosed is a copy of the message",
}

// originalHeaderKeys are fields that open the header of a returned message
// quoted in a bounce's text.
var originalHeaderKeys = map[string]bool{
	"return-path": true, "received": true, "message-id": true, "date": true, "from": true, "to": true,
	"subject": true, "mime-version": true, "content-type": true, "dkim-signature": true,
	"delivered-to": true, "authentication-results": true, "arc-seal": true, "x-received": true,
	"reply-to": true, "sender": true, "cc": true, "references": true, "in-reply-to": true,
	"x-mailer": true, "user-agent": true, "content-transfer-encoding": true, "domainkey-signature": true,
	"x-google-dkim-signature": true, "x-gm-message-state": true, "x-google-smtp-source": true,
}

// openingHeaderKeys are the fields a quoted message header starts with:
// trace and signature fields that a bounce's own prose never begins with.
var openingHeaderKeys = map[string]bool{
	"return-path": true, "received": true, "delivered-to": true, "x-received": true,
	"dkim-signature": true, "arc-seal": true, "authentication-results": true, "message-id": true,
	"domainkey-signature": true, "x-original-to": true, "x-google-smtp-source": true, "received-spf": true,
}

// splitOriginal cuts a bounce's text where the returned message begins.
func splitOriginal(body string) (errText, original string) {
	lines := strings.Split(body, "\n")
	offset := 0
	for i, line := range lines {
		if i > 0 && isSeparator(line) {
			return body[:offset], strings.TrimLeft(body[offset+len(line):], "\n")
		}
		if i > 0 && strings.TrimSpace(lines[i-1]) == "" && startsHeaderBlock(lines[i:]) {
			return body[:offset], body[offset:]
		}
		offset += len(line) + 1
		if offset > len(body) {
			offset = len(body)
		}
	}
	return body, ""
}

func isSeparator(line string) bool {
	l := strings.ToLower(strings.TrimSpace(line))
	if l == "" {
		return false
	}
	for _, p := range separatorPhrases {
		if strings.Contains(l, p) {
			return true
		}
	}
	if len(l) >= 3 && strings.ContainsRune("-=*_", rune(l[0])) && l[1] == l[0] {
		for _, w := range separatorWords {
			if strings.Contains(l, w) {
				return true
			}
		}
	}
	return false
}

// startsHeaderBlock reports whether lines open a quoted message header:
// three consecutive fields (continuations included), the first two of them
// typical of a message header.
func startsHeaderBlock(lines []string) bool {
	fields := 0
	for _, l := range lines {
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			if fields == 0 {
				return false
			}
			continue
		}
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || strings.ContainsAny(l[:colon], " \t") {
			return false
		}
		key := strings.ToLower(l[:colon])
		if fields == 0 && !openingHeaderKeys[key] || fields < 2 && !originalHeaderKeys[key] {
			return false
		}
		fields++
		if fields >= 3 {
			return true
		}
	}
	return false
}
