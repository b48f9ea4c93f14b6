package dkim

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"corriere/core/dns/authserver"
	"corriere/core/mailtest"
	"corriere/core/node"
	"corriere/core/tenant"
)

// dkimverifyScript runs Debian's dkimverify command unchanged, with its DNS
// queries (dnspython's default resolver) sent to a nameserver on loopback
// instead of /etc/resolv.conf, once for each check in one Python process:
// starting Python and importing dkim takes far longer than a verification.
// Arguments: nameserver port, path of the dkimverify script, then one
// "index:path" per check (the signature index and a file holding the
// message). It prints one line per check: the exit status, a tab, and
// what dkimverify printed.
const dkimverifyScript = `
import contextlib, io, runpy, sys
import dns.resolver
port, script = int(sys.argv[1]), sys.argv[2]
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = port
dns.resolver.default_resolver = r
for check in sys.argv[3:]:
    index, path = check.split(":", 1)
    with open(path, "rb") as f:
        sys.stdin = io.TextIOWrapper(io.BytesIO(f.read()))
    sys.argv = ["dkimverify", "--index", index]
    out, status = io.StringIO(), 0
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            status = e.code or 0
    print(status, out.getvalue().strip().replace("\n", " "), sep="\t")
`

// pyCheck is one run of dkimverify: a message and the signature to verify.
type pyCheck struct {
	raw   []byte
	index int
}

// pyVerdict is what one run of dkimverify printed, and whether it exited
// with a failure.
type pyVerdict struct {
	line   string
	failed bool
}

// dkimverify returns a function that runs dkimverify for each check, and
// returns the verdicts in order, or skips the test when python3-dkim is not
// installed.
func dkimverify(t *testing.T, dnsAddr string) func(t *testing.T, checks []pyCheck) []pyVerdict {
	t.Helper()
	script, err := exec.LookPath("dkimverify")
	if err != nil {
		t.Skip("dkimverify is not installed (Debian package python3-dkim; .ci/run installs it): skipping the independent verification")
	}
	f, err := os.Open(script)
	if err != nil {
		t.Fatal(err)
	}
	shebang, _ := bufio.NewReader(f).ReadString('\n')
	f.Close()
	python := strings.Fields(strings.TrimPrefix(shebang, "#!"))
	if !strings.HasPrefix(shebang, "#!") || len(python) == 0 {
		t.Skipf("%s is not a Python script", script)
	}
	if err := exec.Command(python[0], "-c", "import dkim, dns.resolver, nacl").Run(); err != nil {
		t.Skipf("%s cannot import dkim, dnspython and nacl (%v): skipping the independent verification", python[0], err)
	}
	_, port, _ := strings.Cut(dnsAddr, ":")
	return func(t *testing.T, checks []pyCheck) []pyVerdict {
		t.Helper()
		dir := t.TempDir()
		args := []string{"-c", dkimverifyScript, port, script}
		for i, c := range checks {
			path := filepath.Join(dir, fmt.Sprintf("check-%d.eml", i))
			writeFile(t, path, string(c.raw))
			args = append(args, fmt.Sprintf("%d:%s", c.index, path))
		}
		out, err := exec.Command(python[0], args...).Output()
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if err != nil || len(lines) != len(checks) {
			t.Fatalf("dkimverify over %d checks: %v; output:\n%s", len(checks), err, out)
		}
		verdicts := make([]pyVerdict, len(checks))
		for i, l := range lines {
			status, line, _ := strings.Cut(l, "\t")
			verdicts[i] = pyVerdict{line: line, failed: status != "0"}
		}
		return verdicts
	}
}

// lookupVia returns a LookupTXT that asks the nameserver at addr over TCP.
func lookupVia(addr string) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		q := new(mdns.Msg)
		q.SetQuestion(mdns.Fqdn(name), mdns.TypeTXT)
		c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second}
		r, _, err := c.Exchange(q, addr)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*mdns.TXT); ok {
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no TXT record at %s", name)
		}
		return out, nil
	}
}

// TestEndToEnd runs a node with the plugin: messages submitted over SMTP are
// signed at ingest, delivered to an MX on loopback, and the message the MX
// received is verified by go-msgauth and by dkimverify (python3-dkim), both
// looking the keys up in DNS on loopback, where they are published as
// `corriere dkim keygen` prints them. Both must pass for RSA and Ed25519.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a node")
	}
	ds, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	verifyPy := dkimverify(t, ds.Addr)

	port := mailtest.FreePort(t, "127.0.0.2")
	mx := mailtest.Start(t, fmt.Sprintf("127.0.0.2:%d", port), mailtest.Options{})
	ds.MustAdd("dest.test. 300 IN MX 10 mx.dest.test.", "mx.dest.test. 300 IN A 127.0.0.2")

	rules := shippedPolicyData(t)
	if err := os.MkdirAll(filepath.Join(rules, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	var entries strings.Builder
	for _, d := range []struct{ domain, rsa, ed string }{{"shop.test", "r2025", "e2025"}, {"platform.test", "p2025", "q2025"}} {
		entries.WriteString(fmt.Sprintf("    [%q] = { keys = {\n", d.domain))
		for _, o := range []KeyOptions{{Domain: d.domain, Selector: d.rsa}, {Domain: d.domain, Selector: d.ed, Algorithm: Ed25519SHA256}} {
			k, err := GenerateKey(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteKeyFile(filepath.Join(rules, "keys", k.FileName()), k.PEM); err != nil {
				t.Fatal(err)
			}
			ds.MustAdd(k.ZoneLine(300))
			entries.WriteString(fmt.Sprintf("      { selector = %q, algorithm = %q, file = %q },\n", k.Selector, k.Algorithm, "keys/"+k.FileName()))
		}
		entries.WriteString("    } },\n")
	}
	writeFile(t, filepath.Join(rules, FileName), "return {\n  platform = \"platform.test\",\n  domains = {\n"+entries.String()+"  },\n}\n")
	hash, err := tenant.HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(rules, "tenants", "acme.lua"), fmt.Sprintf(
		"return { password_hash = %q, reenvelope = true, bounce_domain = \"bounces.platform.test\" }\n", hash))

	n, err := node.Start(t.Context(), node.Config{
		Listen: "127.0.0.1:0", SpoolDir: t.TempDir(), Hostname: "mta.test",
		DNSServers: []string{ds.Addr}, MXPort: port, ScriptsDir: "../../scripts", RulesDir: rules,
		RelayNets:            []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		InsecureAuthLoopback: true, Plugins: []string{"dkim"},
		Retry:  []time.Duration{time.Second},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(t.Context()) })

	shop := crlf("From: Negozio <news@shop.test>\nTo: <mario@dest.test>\nSubject: Saldi\nDate: Tue, 25 Nov 2025 10:00:00 +0100\nMessage-ID: <e2e-1@shop.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nFino al 50%.   \nCiao!\n")
	submit(t, n.Addr(), nil, "news@shop.test", "mario@dest.test", shop)
	author := crlf("From: Dott. Bianchi <bianchi@studio.example>\nTo: <paziente@dest.test>\nSubject: Referto\nDate: Tue, 25 Nov 2025 10:05:00 +0100\nMessage-ID: <e2e-2@studio.example>\n\nIl referto e' pronto.\n")
	submit(t, n.Addr(), sasl.NewPlainClient("", "acme", "secret"), "bianchi@studio.example", "paziente@dest.test", author)

	got := mx.Wait(t, 2, 30*time.Second)
	for _, tc := range []struct {
		name, rcpt, domain string
		selectors          []string
	}{
		{"From: domain signs with RSA and Ed25519", "mario@dest.test", "shop.test", []string{"r2025", "e2025"}},
		{"re-enveloped: the platform signs", "paziente@dest.test", "platform.test", []string{"p2025", "q2025"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			for _, m := range got {
				if len(m.To) == 1 && m.To[0] == tc.rcpt {
					raw = m.Data
				}
			}
			if raw == nil {
				t.Fatalf("the MX received nothing for %s", tc.rcpt)
			}
			vs := verify(t, raw, lookupVia(ds.Addr))
			if len(vs) != len(tc.selectors) {
				t.Fatalf("%d signatures, want %d:\n%s", len(vs), len(tc.selectors), raw)
			}
			tampered := bytes.Replace(raw, []byte("\r\n\r\n"), []byte("\r\nFrom: ceo@bank.example\r\n\r\n"), 1)
			var checks []pyCheck
			for i, v := range vs {
				if v.Err != nil || v.Domain != tc.domain {
					t.Errorf("go-msgauth, signature %d: d=%s, %v; want d=%s and pass", i, v.Domain, v.Err, tc.domain)
				}
				checks = append(checks, pyCheck{raw, i}, pyCheck{tampered, i})
			}
			verdicts := verifyPy(t, checks)
			for i := range vs {
				if v := verdicts[2*i]; v.failed || v.line != "signature ok" {
					t.Errorf("dkimverify --index %d (s=%s): %q, failed %v; want \"signature ok\"", i, tc.selectors[i], v.line, v.failed)
				}
				if v := verdicts[2*i+1]; !v.failed || v.line != "signature verification failed" {
					t.Errorf("dkimverify --index %d on a message with a From: added: %q, failed %v; want a failure", i, v.line, v.failed)
				}
			}
			if tc.domain == "platform.test" && !bytes.Contains(raw, []byte("From: Dott. Bianchi <bianchi@studio.example>")) {
				t.Errorf("the re-enveloped message lost its From:\n%s", raw)
			}
		})
	}
}

// shippedPolicyData copies the shipped rules/*.lua, which the shipped
// scripts read, into a temporary directory, without rules/dkim.lua and its
// demo keys.
func shippedPolicyData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join("..", "..", "rules", "*.lua"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) == FileName {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, filepath.Base(f)), string(b))
	}
	return dir
}

// submit sends one message over SMTP without TLS, which the node allows
// from loopback.
func submit(t *testing.T, addr string, auth sasl.Client, from, to, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendMail(from, []string{to}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
