package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
)

// corriereBinary returns the path of a corriere binary: this test binary,
// which runs as corriere when its first argument is a subcommand (see
// TestMain), so the tests need no go build of their own.
func corriereBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("the test binary's path: %v", err)
	}
	return self
}

// serveProcess is `corriere serve` running as a child process.
type serveProcess struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

// startServe runs `corriere serve` on spool with the shipped policy and waits until it listens. The extra flags
// come last, so they override the defaults.
// loopbackMX serves a DNS zone on 127.0.0.1 that gives each domain of
// pairs (domain, IP, domain, IP...) one MX host at its IP, and returns the
// server's address and a port free on every IP for the receivers.
func loopbackMX(t *testing.T, pairs ...string) (dnsAddr string, port int) {
	t.Helper()
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	var ips []string
	for i := 0; i+1 < len(pairs); i += 2 {
		domain, ip := pairs[i], pairs[i+1]
		ds.MustAdd(domain+". 300 IN MX 10 mx."+domain+".", "mx."+domain+". 300 IN A "+ip)
		ips = append(ips, ip)
	}
	return ds.Addr, mailtest.FreePort(t, ips...)
}

func startServe(t *testing.T, spool string, extra ...string) *serveProcess {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", addr, "--spool", spool,
		"--scripts", "../../scripts", "--rules", "../../rules", "--hostname", "mta.test", "--admin", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(corriereBinary(t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, addr: addr, log: logf}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logf.Name())
			t.Fatalf("serve did not listen on %s:\n%s", addr, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unthrottledRules returns a copy of the shipped rules whose default
// provider, which the tests' receivers fall under, takes 60000 messages a
// minute instead of 300: the tests that use it are about the spool, and
// the polite default would make them wait on the rate instead.
func unthrottledRules(t *testing.T) string {
	t.Helper()
	const polite = "default = {\n    connections = 5,\n    messages_per_connection = 100,\n    recipients_per_message = 50,\n    per_minute = 300,"
	return rulesWithProviders(t, polite, strings.Replace(polite, "per_minute = 300,", "per_minute = 60000,", 1))
}

// rulesWithProviders returns a copy of the shipped rules whose
// providers.lua has old replaced by new; the test fails when old is no
// longer there.
func rulesWithProviders(t *testing.T, old, new string) string {
	t.Helper()
	dir := copyRules(t)
	path := filepath.Join(dir, "providers.lua")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		t.Fatalf("rules/providers.lua no longer has %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (p *serveProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// stop asks the node to shut down, as systemctl stop does, and waits.
func (p *serveProcess) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
	}
}

func (p *serveProcess) logs() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

// smtpSend sends one message over an open session and returns the final
// reply line of DATA.
func smtpSend(rw *bufio.ReadWriter, from, to, body string) (string, error) {
	cmds := []string{"MAIL FROM:<" + from + ">", "RCPT TO:<" + to + ">", "DATA"}
	for _, c := range cmds {
		if _, err := rw.WriteString(c + "\r\n"); err != nil {
			return "", err
		}
		if err := rw.Flush(); err != nil {
			return "", err
		}
		line, err := readFinal(rw.Reader)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(line, "250") && !strings.HasPrefix(line, "354") {
			return line, nil
		}
	}
	if _, err := rw.WriteString(body + ".\r\n"); err != nil {
		return "", err
	}
	if err := rw.Flush(); err != nil {
		return "", err
	}
	return readFinal(rw.Reader)
}

func readFinal(r *bufio.Reader) (string, error) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
}

func openSession(addr string) (net.Conn, *bufio.ReadWriter, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	if _, err := readFinal(rw.Reader); err != nil {
		c.Close()
		return nil, nil, err
	}
	rw.WriteString("EHLO client.test\r\n")
	rw.Flush()
	if _, err := readFinal(rw.Reader); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, rw, nil
}

// deferMark marks the messages TestKillNineLosesNothing's receiver defers
// until the kill.
const deferMark = "X-Test-Defer: yes"

// TestKillNineLosesNothing injects messages into `corriere serve`, kills it
// with SIGKILL while injection and delivery are under way, restarts it on
// the same spool, and checks that every message that got 250 is delivered.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs corriere as a process")
	}
	dnsAddr, port := loopbackMX(t, "dest.test", "127.0.0.41")
	// Until the kill, the receiver defers every message marked so (every
	// other one), so that the kill comes while messages are both being
	// delivered and waiting for their retry; after the kill it takes all.
	var accept atomic.Bool
	rx := mailtest.Start(t, fmt.Sprintf("127.0.0.41:%d", port), mailtest.Options{
		Data: func(data []byte, _ int) error {
			if !accept.Load() && bytes.Contains(data, []byte(deferMark)) {
				return mailtest.Reply(451, "4.3.0", "Not now")
			}
			return nil
		},
	})
	spool := t.TempDir()
	extra := []string{"--dns", dnsAddr, "--mx-port", fmt.Sprint(port), "--retry", "200ms", "--rules", unthrottledRules(t)}
	p := startServe(t, spool, extra...)

	const clients, perClient = 4, 30
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	killAfter := make(chan struct{})
	var once sync.Once
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, rw, err := openSession(p.addr)
			if err != nil {
				return
			}
			defer conn.Close()
			for i := 0; i < perClient; i++ {
				id := fmt.Sprintf("m-%d-%d", c, i)
				body := "Subject: durability\r\nX-Test-Id: " + id + "\r\n"
				if i%2 == 1 {
					body += deferMark + "\r\n"
				}
				body += "\r\nhello\r\n"
				line, err := smtpSend(rw, "app@sender.test", "rcpt"+id+"@dest.test", body)
				if err != nil {
					return // the server died mid-transaction: not acknowledged
				}
				if strings.HasPrefix(line, "250") {
					mu.Lock()
					acked[id] = true
					if len(acked) == clients*perClient/2 {
						once.Do(func() { close(killAfter) })
					}
					mu.Unlock()
				}
			}
		}(c)
	}
	select {
	case <-killAfter:
	case <-time.After(60 * time.Second):
		t.Fatalf("injection too slow; logs:\n%s", p.logs())
	}
	p.kill()
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	delivered := func() map[string]bool {
		got := map[string]bool{}
		for _, m := range rx.Messages() {
			for _, line := range strings.Split(string(m.Data), "\r\n") {
				if id, ok := strings.CutPrefix(line, "X-Test-Id: "); ok {
					got[id] = true
				}
			}
		}
		return got
	}
	nDelivered := len(delivered())
	t.Logf("acknowledged %d messages before SIGKILL; %d delivered before the kill", nAcked, nDelivered)
	if nDelivered >= nAcked {
		t.Fatalf("all %d acknowledged messages were delivered before the kill: the restart has nothing to prove", nAcked)
	}

	accept.Store(true)
	p2 := startServe(t, spool, extra...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := delivered()
		var missing []string
		for id := range acked {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages never delivered after restart, e.g. %v\nlogs:\n%s", len(missing), nAcked, missing[:min(5, len(missing))], p2.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
