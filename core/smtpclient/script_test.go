package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptServer plays one SMTP dialogue over loopback, for the behaviours a
// real server will not produce on demand. A script has one step per line:
//
//	< 250 text   send this line; consecutive "<" lines go out in one write
//	> LINE       read a line that must equal LINE, or start with it when
//	             LINE ends in "*"
//	>+ LINE      the same, and the line must have arrived together with the
//	             previous one: the client pipelined it
//	data         read message content up to the lone "." and record it as
//	             sent, dot-stuffed and with its line endings
//	read         read and discard what the client sent in one segment
//	close        close the connection
//	hang         read and discard until the client closes the connection,
//	             ignoring how it does
//
// In lockstep mode the server also checks, before each write, that the
// client has sent nothing it has not had an answer to.
type scriptServer struct {
	addr string
	done chan struct{}

	mu       sync.Mutex
	err      error
	contents []string
}

// scriptLimit bounds one dialogue, so that a broken test fails instead of
// hanging.
const scriptLimit = 10 * time.Second

// lockstepGrace is how long a lockstep server waits for a command the
// client should not send; a correct client never sends one.
const lockstepGrace = 20 * time.Millisecond

// startScript starts a server on 127.0.0.1 that plays script with the first
// client that connects.
func startScript(t *testing.T, script string, lockstep bool) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{addr: ln.Addr().String(), done: make(chan struct{})}
	var conn net.Conn
	var connMu sync.Mutex
	go func() {
		defer close(s.done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			s.setErr(err)
			return
		}
		connMu.Lock()
		conn = c
		connMu.Unlock()
		defer c.Close()
		s.setErr(s.play(c, script, lockstep))
	}()
	t.Cleanup(func() {
		ln.Close()
		connMu.Lock()
		if conn != nil {
			conn.Close()
		}
		connMu.Unlock()
		<-s.done
	})
	return s
}

// check waits for the dialogue to end and fails the test if the client
// strayed from the script. It returns the recorded message contents.
func (s *scriptServer) check(t *testing.T) []string {
	t.Helper()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Errorf("script server: %v", s.err)
	}
	return s.contents
}

func (s *scriptServer) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *scriptServer) play(c net.Conn, script string, lockstep bool) error {
	limit := time.Now().Add(scriptLimit)
	c.SetDeadline(limit)
	br := bufio.NewReader(c)
	var out strings.Builder
	flush := func() error {
		if out.Len() == 0 {
			return nil
		}
		if lockstep {
			if err := expectSilence(c, br, limit); err != nil {
				return err
			}
		}
		_, err := io.WriteString(c, out.String())
		out.Reset()
		return err
	}
	for n, step := range strings.Split(strings.TrimSpace(script), "\n") {
		step = strings.TrimSpace(step)
		if step == "" {
			continue
		}
		if text, ok := strings.CutPrefix(step, "< "); ok {
			out.WriteString(text + "\r\n")
			continue
		}
		if err := flush(); err != nil {
			return fmt.Errorf("step %d: %w", n+1, err)
		}
		var err error
		switch {
		case strings.HasPrefix(step, ">+ "):
			if br.Buffered() == 0 {
				err = fmt.Errorf("%q was not pipelined with the previous command", step[3:])
			} else {
				err = expectLine(br, step[3:])
			}
		case strings.HasPrefix(step, "> "):
			err = expectLine(br, step[2:])
		case step == "data":
			var content string
			content, err = readContent(br)
			s.mu.Lock()
			s.contents = append(s.contents, content)
			s.mu.Unlock()
		case step == "read":
			if _, err = br.Peek(1); err == nil {
				_, err = br.Discard(br.Buffered())
			}
		case step == "close":
			return c.Close()
		case step == "hang":
			io.Copy(io.Discard, br)
		default:
			err = errors.New("bad script step")
		}
		if err != nil {
			return fmt.Errorf("step %d %q: %w", n+1, step, err)
		}
	}
	return flush()
}

// expectSilence fails if the client sends anything within lockstepGrace.
func expectSilence(c net.Conn, br *bufio.Reader, limit time.Time) error {
	if br.Buffered() > 0 {
		return fmt.Errorf("client sent %q before the reply to its previous command", peekAll(br))
	}
	c.SetReadDeadline(time.Now().Add(lockstepGrace))
	_, err := br.Peek(1)
	c.SetReadDeadline(limit)
	switch {
	case err == nil:
		return fmt.Errorf("client sent %q before the reply to its previous command", peekAll(br))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	}
	return err
}

func peekAll(br *bufio.Reader) string {
	b, _ := br.Peek(br.Buffered())
	return string(b)
}

// expectLine reads one CRLF-terminated line and matches it against want.
func expectLine(br *bufio.Reader, want string) error {
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading %q: %w", want, err)
	}
	got, ok := strings.CutSuffix(line, "\r\n")
	if !ok {
		return fmt.Errorf("line %q does not end in CRLF", line)
	}
	if prefix, isPrefix := strings.CutSuffix(want, "*"); isPrefix {
		if !strings.HasPrefix(got, prefix) {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	}
	if got != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

// readContent reads message content up to and without the ".\r\n" line.
func readContent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), fmt.Errorf("reading content: %w", err)
		}
		if line == ".\r\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}
