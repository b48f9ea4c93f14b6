package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/dns/authserver"
	"corriere/core/dnscheck"
	"corriere/plugins/dkim"
)

// dnsCheckRules writes a rules directory with two pooled source IPs, the
// tenant acme sending From: example.org, and an Ed25519 key for it; it
// returns the directory and the key's record.
func dnsCheckRules(t *testing.T) (dir, record string) {
	t.Helper()
	dir = t.TempDir()
	k, err := dkim.GenerateKey(dkim.KeyOptions{Domain: "example.org", Selector: "s1", Algorithm: dkim.Ed25519SHA256})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"pools.lua": `return { pools = { bulk = { ips = {
			{ ip = "192.0.2.10", helo = "out10.mta.example.net" },
			{ ip = "192.0.2.11", helo = "out11.mta.example.net" },
		} } } }`,
		"tenants/acme.lua": `return { sender_domains = { "example.org" } }`,
		"dkim.lua": `return { headers = { "From" }, domains = { ["example.org"] = {
			keys = { { selector = "s1", algorithm = "ed25519-sha256", file = "keys/s1.pem" } } } } }`,
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := dkim.WriteKeyFile(filepath.Join(dir, "keys", "s1.pem"), k.PEM); err != nil {
		t.Fatal(err)
	}
	return dir, k.Record
}

// TestDNSCheckCommand runs `corriere dns check` with the settings of a
// configuration file against a DNS server on loopback: a correct zone exits
// 0, and a zone whose DKIM record holds another key exits 1 with that error
// and the record to publish, in text and in JSON (where --tenant alone
// checks the tenant's sender_domains).
func TestDNSCheckCommand(t *testing.T) {
	rules, record := dnsCheckRules(t)
	srv, err := authserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.MustAdd(
		`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`s1._domainkey.example.org. 300 IN TXT "`+record+`"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@example.org"`,
		`10.2.0.192.in-addr.arpa. 300 IN PTR out10.mta.example.net.`,
		`11.2.0.192.in-addr.arpa. 300 IN PTR out11.mta.example.net.`,
		`out10.mta.example.net. 300 IN A 192.0.2.10`,
		`out11.mta.example.net. 300 IN A 192.0.2.11`,
		`out10.mta.example.net. 300 IN TXT "v=spf1 a -all"`,
		`out11.mta.example.net. 300 IN TXT "v=spf1 a -all"`,
	)
	config := filepath.Join(t.TempDir(), "corriere.conf")
	if err := os.WriteFile(config, []byte("rules = "+rules+"\ndns = "+srv.Addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if status := runDNS(t.Context(), []string{"check", "example.org", "--config", config}, &stdout, &stderr); status != 0 {
		t.Fatalf("correct zone: status %d\n%s%s", status, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "0 errors, 0 warnings") {
		t.Errorf("correct zone:\n%s", stdout.String())
	}

	srv.Remove("s1._domainkey.example.org")
	srv.MustAdd(`s1._domainkey.example.org. 300 IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="`)
	stdout.Reset()
	if status := runDNS(t.Context(), []string{"check", "--tenant", "acme", "--config", config, "example.org"}, &stdout, &stderr); status != 1 {
		t.Fatalf("wrong key: status %d, want 1\n%s%s", status, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `publish: s1._domainkey.example.org. 3600 IN TXT "`+record+`"`) {
		t.Errorf("wrong key: no record to publish:\n%s", stdout.String())
	}
	stdout.Reset()
	runDNS(t.Context(), []string{"check", "--json", "--config", config, "--tenant", "acme"}, &stdout, &stderr)
	var report dnscheck.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if strings.Join(report.Domains, ",") != "example.org" || report.Count(dnscheck.Error) != 1 { // the key: DMARC still passes through SPF
		t.Errorf("--json: %d errors, want 1:\n%s", report.Count(dnscheck.Error), stdout.String())
	}
}
