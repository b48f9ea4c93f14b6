package tracking

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"corriere/core/dns/authserver"
	"corriere/core/event"
	"corriere/core/mailtest"
	"corriere/core/node"
	"corriere/core/reputation"
	"corriere/core/testlib"
	_ "corriere/plugins/dkim" // signs after the rewrite, as in corriere serve
)

// collector keeps the tracking and delivery events of a node.
type collector struct {
	mu     sync.Mutex
	events []event.Event
}

func (c *collector) Emit(e *event.Event) {
	switch e.Type {
	case event.Opened, event.Clicked, event.Delivered:
		c.mu.Lock()
		c.events = append(c.events, *e)
		c.mu.Unlock()
	}
}

func (c *collector) of(typ event.Type) []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Event
	for _, e := range c.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// copyDir copies the files of a directory tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// publicKeyRecord returns the DKIM TXT record of a PKCS#8 private key file.
func publicKeyRecord(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b[bytes.Index(b, []byte("-----BEGIN")):])
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
}

// submit sends one message with AUTH PLAIN, which the node offers to
// loopback clients without TLS.
func submit(t *testing.T, addr, user, pass, from, to, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("sender.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail(from, []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// TestTrackingThroughANode sends a newsletter with two links through a
// node to a loopback receiver, then opens and clicks it with an HTTP client
// as a reader would, and checks what the issue asks: the links are
// rewritten before DKIM signs (the signature verifies), mailto:, tel: and
// the List-Unsubscribe link are not; a HEAD request within two seconds of
// delivery is flagged as a scanner; a tampered token, or a token on another
// host, gets a 404 and no redirect; the reader's opens and clicks count as
// one human open and one human click, a proxy's open apart; reputation
// counts them at the provider.
func TestTrackingThroughANode(t *testing.T) {
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	port := mailtest.FreePort(t, "127.0.0.46")
	ds.MustAdd("inbox.test. 300 IN MX 10 mx.inbox.test.", "mx.inbox.test. 300 IN A 127.0.0.46")
	recv := mailtest.Start(t, fmt.Sprintf("127.0.0.46:%d", port), mailtest.Options{})

	rules := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "rules"), rules)
	const scannerWindow = 2 * time.Second
	if err := os.WriteFile(filepath.Join(rules, FileName), []byte(`return {
  tenants = { example = { url = "http://click.example.com", classes = { "newsletter" } } },
  scanner_window = "2s",
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trackAddr := ln.Addr().String()
	ln.Close()
	n, err := node.Start(context.Background(), node.Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test", DNSServers: []string{ds.Addr}, MXPort: port,
		ScriptsDir: filepath.Join("..", "..", "scripts"), RulesDir: rules, InsecureAuthLoopback: true,
		PluginConfig: map[string]map[string]any{"tracking": {"listen": trackAddr}},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	events := &collector{}
	n.Subscribe(events)

	const html = `<html><body><p>Saldi!</p>
<p><a href="https://shop.example.com/a?x=1&amp;y=2">first</a> and <a href="https://shop.example.com/b">second</a></p>
<p><a href="mailto:help@example.com">write</a> <a href="tel:+39021234567">call</a>
<a href="https://example.com/unsubscribe">unsubscribe</a></p></body></html>`
	msg := "From: news@example.com\r\nTo: reader@inbox.test\r\nSubject: Saldi\r\nList-Id: <news.example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nSaldi! https://shop.example.com/a\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + strings.ReplaceAll(html, "\n", "\r\n") + "\r\n--alt--\r\n"
	submit(t, n.Addr(), "example", "corriere-demo", "news@example.com", "reader@inbox.test", msg)
	got := recv.Wait(t, 1, 10*time.Second)[0]
	testlib.WaitFor(t, "the delivered event", func() bool { return len(events.of(event.Delivered)) == 1 })
	delivered := events.of(event.Delivered)[0]

	// The signature covers the rewritten body.
	record := publicKeyRecord(t, filepath.Join(rules, "keys", "corriere-smarthost.it.corriere.rsa.pem"))
	verifications, err := dkim.VerifyWithOptions(bytes.NewReader(got.Data), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{record}, nil },
	})
	if err != nil || len(verifications) == 0 || verifications[0].Err != nil {
		t.Fatalf("DKIM: %v, %+v", err, verifications)
	}
	data := string(got.Data)
	for _, kept := range []string{`href="mailto:help@example.com"`, `href="tel:+39021234567"`, `href="https://example.com/unsubscribe"`,
		"Saldi! https://shop.example.com/a"} {
		if !strings.Contains(data, kept) {
			t.Errorf("delivered message lacks %q:\n%s", kept, data)
		}
	}
	clicks := regexp.MustCompile(`http://click\.example\.com/c/[A-Za-z0-9_.-]+`).FindAllString(data, -1)
	pixels := regexp.MustCompile(`http://click\.example\.com/o/[A-Za-z0-9_.-]+`).FindAllString(data, -1)
	if len(clicks) != 2 || len(pixels) != 1 {
		t.Fatalf("%d tracked links and %d pixels, want 2 and 1:\n%s", len(clicks), len(pixels), data)
	}

	// Every tracking URL names click.example.com, which resolves to the
	// tracking listener here.
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, trackAddr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
	fetch := func(method, url, agent string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", agent)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const reader = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"

	// A scanner checks the first link with HEAD right after delivery.
	if resp := fetch(http.MethodHead, clicks[0], "Mozilla/5.0"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://shop.example.com/a?x=1&y=2" {
		t.Errorf("HEAD on the first link = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if since := time.Since(delivered.Time); since > scannerWindow {
		t.Logf("the HEAD came %v after delivery, later than the test meant; it is flagged as a HEAD all the same", since)
	}

	// Tampered tokens, and good ones on another host or path, are 404s
	// that redirect nowhere.
	token := clicks[0][strings.LastIndexByte(clicks[0], '/')+1:]
	payload, sig, _ := strings.Cut(token, ".")
	tampered := payload[:len(payload)-3] + "AAA" + "." + sig
	for name, url := range map[string]string{
		"tampered payload":   "http://click.example.com/c/" + tampered,
		"tampered signature": "http://click.example.com/c/" + payload + "." + strings.Repeat("A", len(sig)),
		"another host":       strings.Replace(clicks[0], "click.example.com", "click.other.test", 1),
		"click as a pixel":   "http://click.example.com/o/" + token,
		"unknown path":       "http://click.example.com/x/" + token,
	} {
		if resp := fetch(http.MethodGet, url, reader); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q; want 404 and none", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// The reader opens and clicks once the scanners' window is over.
	testlib.WaitForWithin(t, 2*scannerWindow, "the scanners' window to pass", func() bool {
		return time.Since(delivered.Time) > scannerWindow+200*time.Millisecond
	})
	for range 2 {
		if resp := fetch(http.MethodGet, pixels[0], reader); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/gif" {
			t.Errorf("pixel = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	fetch(http.MethodGet, pixels[0], "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)")
	for i, want := range []string{"https://shop.example.com/a?x=1&y=2", "https://shop.example.com/b", "https://shop.example.com/a?x=1&y=2"} {
		if resp := fetch(http.MethodGet, clicks[i%2], reader); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("click %d = %d, Location %q, want 302 to %s", i, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}

	human := func(evs []event.Event, cat event.Category) int {
		k := 0
		for _, e := range evs {
			if e.Category == cat {
				k++
				if e.Recipient != "reader@inbox.test" || e.Tenant != "example" || e.Class != "newsletter" || e.Provider != delivered.Provider || e.MsgID != delivered.MsgID {
					t.Errorf("event %+v does not name the delivery %+v", e, delivered)
				}
			}
		}
		return k
	}
	testlib.WaitFor(t, "the opens and clicks", func() bool {
		return len(events.of(event.Opened)) >= 2 && len(events.of(event.Clicked)) >= 2
	})
	opens, clicked := events.of(event.Opened), events.of(event.Clicked)
	if h, m := human(opens, ""), human(opens, event.MachineOpen); h != 1 || m != 1 || len(opens) != 2 {
		t.Errorf("opens: %d human, %d machine, %d in all; want 1, 1, 2: %+v", h, m, len(opens), opens)
	}
	if h, s := human(clicked, ""), human(clicked, event.ScannerClick); h != 1 || s != 1 || len(clicked) != 2 {
		t.Errorf("clicks: %d human, %d scanner, %d in all; want 1, 1, 2: %+v", h, s, len(clicked), clicked)
	}
	for _, e := range clicked {
		if e.Category == event.ScannerClick && !strings.Contains(e.Reason, "HEAD") {
			t.Errorf("scanner click reason %q does not say HEAD", e.Reason)
		}
	}

	rows := n.Reputation().Rows(reputation.Filter{Provider: delivered.Provider})
	for _, r := range rows {
		if r.Dimension != reputation.ByProvider {
			continue
		}
		if c := r.Hour.Counts; c.Delivered != 1 || c.Opened != 1 || c.Clicked != 1 || c.MachineOpened != 1 || c.ScannerClicked != 1 {
			t.Errorf("reputation at %s: %+v", r.Name, c)
		}
	}
}
