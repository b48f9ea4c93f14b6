package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
)

// BenchmarkPolicyIsolation measures how much a pathological message costs
// the other senders: 4 clients on 127.0.0.1 submit b.N ordinary messages
// while, in the "attack" case, 4 more connections from 127.0.0.2 keep
// submitting messages whose subject makes the default classify hook loop
// until its time budget stops it. It reports the ordinary senders'
// accepted messages per second (compare "quiet" and "attack") and how
// many looping messages were answered. Run it with a fixed count:
//
//	go test -run XXX -bench PolicyIsolation -benchtime 3000x -count 5 ./core/node
func BenchmarkPolicyIsolation(b *testing.B) {
	for _, attackers := range []int{0, 4} {
		name := "quiet"
		if attackers > 0 {
			name = "attack"
		}
		b.Run(name, func(b *testing.B) { benchIsolation(b, attackers) })
	}
}

// spinningScripts copies the repository's scripts with a classify that
// loops forever on the subject "spin".
func spinningScripts(tb testing.TB) string {
	tb.Helper()
	dir := copyTree(tb, "../../scripts")
	path := filepath.Join(dir, "classify.lua")
	src, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	const def = "function classify(msg)\n"
	if !strings.Contains(string(src), def) {
		tb.Fatalf("%s does not define classify as expected", path)
	}
	spin := strings.Replace(string(src), def, def+"  if msg:subject() == \"spin\" then while true do end end\n", 1)
	if err := os.WriteFile(path, []byte(spin), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func benchIsolation(b *testing.B, attackers int) {
	const domains, clients = 10, 4
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	sinkIP := "127.0.0.61"
	port := mailtest.FreePort(b, sinkIP)
	mailtest.Start(b, fmt.Sprintf("%s:%d", sinkIP, port), mailtest.Options{CountOnly: true})
	for d := 0; d < domains; d++ {
		ds.MustAdd(fmt.Sprintf("d%d.test. 3600 IN MX 10 mx.d%d.test.", d, d),
			fmt.Sprintf("mx.d%d.test. 3600 IN A %s", d, sinkIP))
	}
	n, err := Start(b.Context(), Config{
		Listen: "127.0.0.1:0", SpoolDir: b.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: spinningScripts(b), RulesDir: benchRules(b),
		RelayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(b.Context())

	ctx, stop := context.WithCancel(b.Context())
	var attackWG sync.WaitGroup
	var spins atomic.Int64
	for range attackers {
		attackWG.Add(1)
		go func() {
			defer attackWG.Done()
			c := dialSMTP(b, "127.0.0.2", n.Addr())
			if c == nil {
				return
			}
			defer c.conn.Close()
			for ctx.Err() == nil {
				// A temporary failure (the hook's safe outcome), whether
				// after the budget or at once.
				if !c.send("u0@d0.test", "spin", "4") {
					return
				}
				spins.Add(1)
			}
		}()
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialSMTP(b, "127.0.0.1", n.Addr())
			if c == nil {
				return
			}
			defer c.conn.Close()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if !c.send(fmt.Sprintf("u%d@d%d.test", i, i%domains), "benchmark", "250") {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	attackWG.Wait()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepted_msg/s")
	if attackers > 0 {
		b.ReportMetric(float64(spins.Load())/elapsed.Seconds(), "spin_msg/s")
	}
}

// smtpClient is a pipelining SMTP client for benchmarks.
type smtpClient struct {
	tb   testing.TB
	conn net.Conn
	rw   *bufio.ReadWriter
}

// dialSMTP connects from the local address ip and says EHLO; it returns
// nil after reporting an error.
func dialSMTP(tb testing.TB, ip, addr string) *smtpClient {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Error(err)
		return nil
	}
	c := &smtpClient{tb: tb, conn: conn, rw: bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))}
	if !c.expect("220") {
		conn.Close()
		return nil
	}
	c.rw.WriteString("EHLO bench.test\r\n")
	c.rw.Flush()
	if !c.expect("250") {
		conn.Close()
		return nil
	}
	return c
}

// expect reads one (multi-line) reply and reports whether its code starts
// with prefix.
func (c *smtpClient) expect(prefix string) bool {
	for {
		l, err := c.rw.ReadString('\n')
		if err != nil {
			c.tb.Error(err)
			return false
		}
		if len(l) >= 4 && l[3] == '-' {
			continue
		}
		if !strings.HasPrefix(l, prefix) {
			c.tb.Errorf("got %q, want %s", l, prefix)
			return false
		}
		return true
	}
}

// send submits one small message to rcpt and reports whether the final
// reply starts with want.
func (c *smtpClient) send(rcpt, subject, want string) bool {
	fmt.Fprintf(c.rw, "MAIL FROM:<app@sender.test>\r\nRCPT TO:<%s>\r\nDATA\r\n", rcpt)
	c.rw.Flush()
	// The pipelined replies: MAIL, RCPT, DATA.
	for _, code := range []string{"250", "250", "354"} {
		if !c.expect(code) {
			return false
		}
	}
	fmt.Fprintf(c.rw, "Subject: %s\r\nFrom: <app@sender.test>\r\n\r\n%s\r\n.\r\n", subject, strings.Repeat("x", 76))
	c.rw.Flush()
	return c.expect(want)
}
