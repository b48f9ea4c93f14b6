package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"corriere/core/reply"
)

// Limits on what a server may send in one reply. RFC 5321 section 4.5.3.1.5
// allows 512 octets per reply line; real servers stay far below these.
const (
	maxReplyLine  = 4096
	maxReplyLines = 100
)

// replyReader reads SMTP replies from a server.
type replyReader struct {
	r     *bufio.Reader
	lines []string
}

// newReplyReader returns a replyReader over r whose buffer holds exactly one
// line of the maximum length.
func newReplyReader(r io.Reader) *replyReader {
	return &replyReader{r: bufio.NewReaderSize(r, maxReplyLine)}
}

// reset discards buffered input and reads from r from now on.
func (rr *replyReader) reset(r io.Reader) { rr.r.Reset(r) }

// buffered returns the number of bytes received but not yet read.
func (rr *replyReader) buffered() int { return rr.r.Buffered() }

// read reads one possibly multi-line reply. Lines may end in CRLF or in a
// bare LF. A line longer than maxReplyLine, a reply longer than
// maxReplyLines, a malformed line and a connection closed mid-reply are
// errors, after which the stream is out of step and must be abandoned.
func (rr *replyReader) read() (*reply.Reply, error) {
	rr.lines = rr.lines[:0]
	for {
		b, err := rr.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("smtpclient: reply line longer than %d bytes", maxReplyLine)
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("smtpclient: connection closed by the server: %w", io.ErrUnexpectedEOF)
		case err != nil:
			return nil, err
		}
		line := string(trimEOL(b))
		_, _, last, err := reply.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("smtpclient: %w", err)
		}
		rr.lines = append(rr.lines, line)
		if last {
			r, err := reply.Parse(rr.lines)
			if err != nil {
				return nil, fmt.Errorf("smtpclient: %w", err)
			}
			return r, nil
		}
		if len(rr.lines) == maxReplyLines {
			return nil, fmt.Errorf("smtpclient: reply longer than %d lines", maxReplyLines)
		}
	}
}

// trimEOL removes the trailing LF and a CR before it.
func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// parseExtensions returns the EHLO keywords of an EHLO reply, upper-cased,
// mapped to their parameters.
func parseExtensions(r *reply.Reply) map[string]string {
	lines := strings.Split(r.Text, "\n")
	ext := make(map[string]string, len(lines))
	for _, line := range lines[1:] {
		kw, param, _ := strings.Cut(strings.TrimSpace(line), " ")
		if kw != "" {
			ext[strings.ToUpper(kw)] = strings.TrimSpace(param)
		}
	}
	return ext
}
