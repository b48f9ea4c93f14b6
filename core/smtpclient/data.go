package smtpclient

import (
	"bufio"
	"bytes"
)

// writeData writes content to w as the payload of DATA, followed by the
// terminating ".\r\n" (RFC 5321 section 4.5.2). Every line ending, whether
// CRLF, a bare LF or a bare CR, is written as CRLF, so that the next hop never
// sees an ambiguous end of line (SMTP smuggling); a line that starts with "."
// gets another "."; and content that does not end with a line ending gets
// one. Write errors stay in w and surface at its next Flush.
func writeData(w *bufio.Writer, content []byte) {
	atLineStart := true
	for len(content) > 0 {
		if atLineStart && content[0] == '.' {
			w.WriteByte('.')
		}
		i := bytes.IndexAny(content, "\r\n")
		if i < 0 {
			w.Write(content)
			atLineStart = false
			break
		}
		w.Write(content[:i])
		w.WriteString("\r\n")
		if content[i] == '\r' && i+1 < len(content) && content[i+1] == '\n' {
			i++
		}
		content = content[i+1:]
		atLineStart = true
	}
	if !atLineStart {
		w.WriteString("\r\n")
	}
	w.WriteString(".\r\n")
}
