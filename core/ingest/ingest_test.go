package ingest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"corriere/core/event"
	"corriere/core/extension"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/spool"
	"corriere/core/tenant"
	"corriere/core/testlib"
)

// collector is the queue side of ingest in these tests: it records what
// ingest handed over after spooling.
type collector struct {
	mu    sync.Mutex
	metas []*spool.Meta
	ents  [][]*spool.Entry
}

func (c *collector) Add(meta *spool.Meta, entries []*spool.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metas = append(c.metas, meta)
	c.ents = append(c.ents, entries)
}

var (
	hashOnce sync.Once
	hash     string
)

func testTenants(t testing.TB) tenant.Directory {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hash = string(h)
	})
	return tenant.Static{
		"acme": {Name: "acme", PasswordHash: hash, SenderDomains: []string{"acme.example"}},
		// relaxed may use the null sender and address literals.
		"relaxed": {Name: "relaxed", PasswordHash: hash, SenderDomains: []string{"relaxed.example"}, NullSender: true, AddressLiterals: true},
	}
}

type serverSetup struct {
	relayNets    []netip.Prefix
	insecureAuth bool
	tls          *tls.Config
	checks       []extension.RecipientCheck
	stages       []extension.Stage
	events       *event.Bus
	// tune changes the options after the ones above are set.
	tune func(*Options)
	// spool, when set, changes the spool's options before it opens.
	spool func(*spool.Options)
}

func startServer(t *testing.T, setup serverSetup) (*Server, string, *spool.Spool, *collector) {
	t.Helper()
	spoolOpts := spool.Options{Dir: t.TempDir()}
	if setup.spool != nil {
		setup.spool(&spoolOpts)
	}
	sp, err := spool.Open(spoolOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	col := &collector{}
	opts := Options{
		Hostname: "mta.test", MaxSize: 10000, MaxRecipients: 5,
		InsecureAuthLoopback: setup.insecureAuth, RelayNets: setup.relayNets, TLS: setup.tls,
		Tenants: testTenants(t), Policy: &policy.Default{}, Spool: sp, Queue: col,
		RecipientChecks: setup.checks, Stages: setup.stages, Events: setup.events,
	}
	if setup.tune != nil {
		setup.tune(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, l.Addr().String(), sp, col
}

// TestDialogues runs the SMTP dialogues in testdata/dialogues against a real
// server. Lines: "c -> X" sends X and CRLF; "c => X" sends X with Go escapes
// (\r, \n) and nothing added; "c <- X" reads one reply and expects it to
// start with X; "@repeat N <line>" repeats a line; "@insecure-auth off" and
// "@relay-net CIDR" configure the server; "#" starts a comment.
func TestDialogues(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/dialogues/*.smtp")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialogues: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".smtp"), func(t *testing.T) {
			t.Parallel() // each dialogue has a server of its own
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
			setup := serverSetup{insecureAuth: true}
			var script []string
			for _, l := range lines {
				switch {
				case l == "" || strings.HasPrefix(l, "#"):
				case l == "@insecure-auth off":
					setup.insecureAuth = false
				case strings.HasPrefix(l, "@relay-net "):
					setup.relayNets = append(setup.relayNets, netip.MustParsePrefix(strings.TrimPrefix(l, "@relay-net ")))
				case strings.HasPrefix(l, "@repeat "):
					n, rest, _ := strings.Cut(strings.TrimPrefix(l, "@repeat "), " ")
					count, _ := strconv.Atoi(n)
					for range count {
						script = append(script, rest)
					}
				default:
					script = append(script, l)
				}
			}
			_, addr, _, _ := startServer(t, setup)
			runDialogue(t, addr, script)
		})
	}
}

func runDialogue(t *testing.T, addr string, script []string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for i, line := range script {
		switch {
		case strings.HasPrefix(line, "c -> ") || line == "c ->":
			if _, err := conn.Write([]byte(strings.TrimPrefix(strings.TrimPrefix(line, "c ->"), " ") + "\r\n")); err != nil {
				t.Fatalf("line %d: write: %v", i+1, err)
			}
		case strings.HasPrefix(line, "c => "):
			s, err := strconv.Unquote(`"` + strings.TrimPrefix(line, "c => ") + `"`)
			if err != nil {
				t.Fatalf("line %d: bad escape: %v", i+1, err)
			}
			if _, err := conn.Write([]byte(s)); err != nil {
				t.Fatalf("line %d: write: %v", i+1, err)
			}
		case strings.HasPrefix(line, "c <- "):
			want := strings.TrimPrefix(line, "c <- ")
			got, err := readReply(r)
			if err != nil {
				t.Fatalf("line %d: want %q, read error %v", i+1, want, err)
			}
			if !strings.HasPrefix(got, want) {
				t.Fatalf("line %d: got %q, want prefix %q", i+1, got, want)
			}
		default:
			t.Fatalf("line %d: unknown directive %q", i+1, line)
		}
	}
}

// readReply reads one (possibly multi-line) reply and returns its last line.
func readReply(r *bufio.Reader) (string, error) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 4 || l[3] != '-' {
			return l, nil
		}
	}
}

func TestAcceptedMessageIsSpooled(t *testing.T) {
	t.Parallel()
	_, addr, sp, col := startServer(t, serverSetup{insecureAuth: true})
	runDialogue(t, addr, []string{
		"c <- 220", "c -> EHLO client.example", "c <- 250",
		"c -> AUTH PLAIN AGFjbWUAc2VjcmV0", "c <- 235",
		"c -> MAIL FROM:<news@acme.example> RET=FULL ENVID=QQ314159", "c <- 250",
		"c -> RCPT TO:<a@dest.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@dest.example", "c <- 250",
		"c -> RCPT TO:<B@Dest.Example>", "c <- 250",
		"c -> DATA", "c <- 354",
		"c -> Subject: hello", "c -> List-Id: <news.acme.example>", "c ->", "c -> ..dot-stuffed line", "c -> body", "c -> .", "c <- 250",
		"c -> QUIT", "c <- 221",
	})
	if len(col.metas) != 1 {
		t.Fatalf("queue got %d messages", len(col.metas))
	}
	meta, entries := col.metas[0], col.ents[0]
	if meta.Tenant != "acme" || meta.Class != message.Newsletter || meta.Ret != message.RetFull || meta.EnvID != "QQ314159" || meta.Sender != "news@acme.example" {
		t.Errorf("meta = %+v", meta)
	}
	if len(entries) != 2 || entries[0].Rcpt.Notify != message.NotifySuccess|message.NotifyFailure ||
		entries[0].Rcpt.ORCPT != "rfc822;a@dest.example" || entries[1].Rcpt.Addr != "B@dest.example" {
		t.Errorf("entries = %+v %+v", entries[0], entries[1])
	}
	content, err := sp.Content(meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(content), "Received: from client.example ([127.0.0.1])\r\n\tby mta.test (Corriere) with ESMTPA id "+meta.ID) {
		t.Errorf("no trace field on top:\n%s", content)
	}
	if !strings.HasSuffix(string(content), "Subject: hello\r\nList-Id: <news.acme.example>\r\n\r\n.dot-stuffed line\r\nbody\r\n") {
		t.Errorf("content not preserved:\n%q", content)
	}
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s, err := New(Options{MaxSessions: 2, Tenants: testTenants(t), Policy: &policy.Default{}, Spool: sp, Queue: &collector{}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, _ := readReply(bufio.NewReader(c)); !strings.HasPrefix(got, "220") {
			t.Fatalf("greeting %q", got)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, _ := readReply(bufio.NewReader(c)); !strings.HasPrefix(got, "421 4.3.2") {
		t.Errorf("third session got %q, want 421 4.3.2", got)
	}
	// Once a held session ends, its slot goes to a new one. The server
	// notices the close asynchronously, so new sessions may still be
	// refused for a moment; each refusal is counted.
	held[0].Close()
	refusedAfter := 0
	testlib.WaitFor(t, "a new session after a held one ended", func() bool {
		c2, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		got, _ := readReply(bufio.NewReader(c2))
		switch {
		case strings.HasPrefix(got, "220"):
			return true
		case strings.HasPrefix(got, "421 4.3.2"):
			refusedAfter++
			return false
		}
		t.Fatalf("after a session ended, a new one got %q", got)
		return false
	})
	if got, want := s.Rejections()["too_many_sessions"], int64(1+refusedAfter); got != want {
		t.Errorf("too_many_sessions rejections = %d, want %d (rejections %v)", got, want, s.Rejections())
	}
}

func TestAuthOnlyAfterSTARTTLS(t *testing.T) {
	t.Parallel()
	cert, pool := testlib.Certificate(t, "mta.test")
	_, addr, _, _ := startServer(t, serverSetup{tls: &tls.Config{Certificates: []tls.Certificate{cert}}})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	ehlo := func(c net.Conn, r *bufio.Reader) string {
		c.Write([]byte("EHLO client.example\r\n"))
		var all []string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, strings.TrimSpace(l))
			if l[3] == ' ' {
				return strings.Join(all, "|")
			}
		}
	}
	r := bufio.NewReader(conn)
	readReply(r)
	caps := ehlo(conn, r)
	if strings.Contains(caps, "AUTH") || !strings.Contains(caps, "STARTTLS") {
		t.Fatalf("before TLS: %s", caps)
	}
	for _, want := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "SIZE 10000"} {
		if !strings.Contains(caps, want) {
			t.Errorf("EHLO lacks %s: %s", want, caps)
		}
	}
	conn.Write([]byte("STARTTLS\r\n"))
	if got, _ := readReply(r); !strings.HasPrefix(got, "220") {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: "mta.test", RootCAs: pool})
	tr := bufio.NewReader(tc)
	caps = ehlo(tc, tr)
	if !strings.Contains(caps, "AUTH PLAIN LOGIN") {
		t.Fatalf("after TLS: %s", caps)
	}
	tc.Write([]byte("AUTH PLAIN AGFjbWUAc2VjcmV0\r\n"))
	if got, _ := readReply(tr); !strings.HasPrefix(got, "235") {
		t.Fatalf("AUTH over TLS: %q", got)
	}
}

func TestReadDataRefusesBareLineEndings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"a\r\nb\r\n", true},
		{"", true},
		{"a\nb\r\n", false},
		{"a\r\nb\n", false},
		{"a\rb\r\n", false},
		{"a\r\n.\n", false},
		{"a\r", false},
	}
	for _, tt := range tests {
		_, err := readBody(strings.NewReader(tt.in), t.TempDir(), newDataBudget(1<<20))
		if (err == nil) != tt.ok {
			t.Errorf("readBody(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func FuzzReadData(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("a\n.\nb"))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, err := readBody(strings.NewReader(string(b)), t.TempDir(), newDataBudget(1<<20))
		if err != nil {
			return
		}
		out := data.raw
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("accepted bare LF at %d in %q", i, out)
			}
			if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
				t.Fatalf("accepted bare CR at %d in %q", i, out)
			}
		}
	})
}

// blockingStage holds every message until released.
type blockingStage struct {
	entered  chan struct{}
	release  chan struct{}
	finished atomic.Bool
}

func (b *blockingStage) Process(context.Context, *message.Message) error {
	close(b.entered)
	<-b.release
	b.finished.Store(true)
	return nil
}

// TestShutdownWaitsForMessageBeingHandled: a message whose DATA was read
// is handled to the end before Shutdown returns, even when Shutdown's
// deadline passes and the connection is closed meanwhile; nothing touches
// the spool after.
func TestShutdownWaitsForMessageBeingHandled(t *testing.T) {
	stage := &blockingStage{entered: make(chan struct{}), release: make(chan struct{})}
	s, addr, _, _ := startServer(t, serverSetup{insecureAuth: true, stages: []extension.Stage{stage}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		r := bufio.NewReader(c)
		for _, line := range []string{"EHLO client.example", "AUTH PLAIN AGFjbWUAc2VjcmV0",
			"MAIL FROM:<news@acme.example>", "RCPT TO:<a@dest.example>", "DATA"} {
			if _, err := readReply(r); err != nil {
				return
			}
			fmt.Fprintf(c, "%s\r\n", line)
		}
		if _, err := readReply(r); err != nil {
			return
		}
		fmt.Fprint(c, "Subject: hi\r\n\r\nbody\r\n.\r\n")
	}()
	<-stage.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// The message is held until Shutdown's deadline has passed: only then
	// may the stage finish.
	go func() {
		<-ctx.Done()
		close(stage.release)
	}()
	if err := s.Shutdown(ctx); err == nil {
		t.Error("Shutdown reported no transaction in flight past its deadline")
	}
	if !stage.finished.Load() {
		t.Fatal("Shutdown returned while a message was still being handled")
	}
}
