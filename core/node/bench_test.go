package node

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
)

// benchProviders lifts the politeness limits of the default rules: the
// benchmark measures the MTA, not a provider's patience.
const benchProviders = `return {
  default = { connections = 16, messages_per_connection = 1000, recipients_per_message = 100 },
  suspend = {},
  providers = {},
}
`

// copyTree copies the directory src into a new temporary directory.
func copyTree(tb testing.TB, src string) string {
	tb.Helper()
	dir := tb.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Owner-only, like the DKIM keys among them must be.
		return os.WriteFile(filepath.Join(dir, rel), data, 0o600)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// benchRules copies the repository's rules with benchProviders.
func benchRules(tb testing.TB) string {
	tb.Helper()
	dir := copyTree(tb, "../../rules")
	if err := os.WriteFile(filepath.Join(dir, "providers.lua"), []byte(benchProviders), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BenchmarkRelay relays b.N messages of 5 KB, each to one recipient, spread
// over 10 recipient domains, from 8 SMTP client connections through a node
// with its durable spool to loopback sinks, and reports end-to-end
// messages/second (accepted durably and delivered) and the accept latency
// (MAIL FROM to the 250 after DATA). Run it with a fixed count, e.g.
//
//	go test -run XXX -bench Relay -benchtime 20000x ./core/node
func BenchmarkRelay(b *testing.B) {
	benchRelay(b, 1)
}

// BenchmarkRelayTenRecipients is BenchmarkRelay with ten recipients per
// message, one in each domain.
func BenchmarkRelayTenRecipients(b *testing.B) {
	benchRelay(b, 10)
}

func benchRelay(b *testing.B, rcptsPerMsg int) {
	const domains, clients = 10, 8
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	sinkIPs := []string{"127.0.0.61", "127.0.0.62"}
	port := mailtest.FreePort(b, sinkIPs...)
	var sinks []*mailtest.Receiver
	for _, ip := range sinkIPs {
		sinks = append(sinks, mailtest.Start(b, fmt.Sprintf("%s:%d", ip, port), mailtest.Options{CountOnly: true}))
	}
	for d := 0; d < domains; d++ {
		ds.MustAdd(fmt.Sprintf("d%d.test. 3600 IN MX 10 mx.d%d.test.", d, d),
			fmt.Sprintf("mx.d%d.test. 3600 IN A %s", d, sinkIPs[d%len(sinkIPs)]))
	}
	n, err := Start(b.Context(), Config{
		Listen: "127.0.0.1:0", SpoolDir: b.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: "../../scripts", RulesDir: benchRules(b),
		RelayNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(b.Context())

	body := "Subject: benchmark\r\nFrom: <app@sender.test>\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 64)
	latencies := make([]time.Duration, b.N)
	var next int64
	var mu sync.Mutex
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if next >= int64(b.N) {
			return -1
		}
		next++
		return int(next - 1)
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", n.Addr())
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))
			expect := func(prefix string) {
				for {
					l, err := rw.ReadString('\n')
					if err != nil {
						b.Error(err)
						return
					}
					if len(l) >= 4 && l[3] == '-' {
						continue
					}
					if !strings.HasPrefix(l, prefix) {
						b.Errorf("got %q, want %s", l, prefix)
					}
					return
				}
			}
			expect("220")
			rw.WriteString("EHLO bench.test\r\n")
			rw.Flush()
			expect("250")
			for i := take(); i >= 0; i = take() {
				t0 := time.Now()
				// PIPELINING: the envelope and DATA in one write.
				rw.WriteString("MAIL FROM:<app@sender.test>\r\n")
				for r := 0; r < rcptsPerMsg; r++ {
					fmt.Fprintf(rw, "RCPT TO:<u%d@d%d.test>\r\n", i, (i+r)%domains)
				}
				rw.WriteString("DATA\r\n")
				rw.Flush()
				expect("250")
				for r := 0; r < rcptsPerMsg; r++ {
					expect("250")
				}
				expect("354")
				rw.WriteString(body)
				rw.WriteString(".\r\n")
				rw.Flush()
				expect("250")
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	want := b.N * rcptsPerMsg
	for {
		got := 0
		for _, s := range sinks {
			got += s.Recipients()
		}
		if got >= want {
			break
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("delivered %d of %d; queue: %+v", got, want, n.Queue().Status())
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted_msg/s")
	b.ReportMetric(float64(latencies[len(latencies)/2])/1e6, "p50_accept_ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100])/1e6, "p99_accept_ms")
}
