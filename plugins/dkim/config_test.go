package dkim

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"corriere/core/luadata"
)

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"syntax error", "return {\n  domains = {\n    [\"a.test\"] = { keys = }\n  }\n}", 3, "near '}'"},
		{"unclosed table", "return {\n  domains = {\n", 3, "at end of file"},
		{"runtime error", "local x = nil\nreturn { headers = x.y }", 2, "attempt to index"},
		{"no os library", "os.exit(1)\nreturn {}", 1, "attempt to index"},
		{"no io library", "local f = io.open(\"/etc/passwd\")\nreturn {}", 1, "attempt to index"},
		{"no require", "local x = require(\"os\")\nreturn {}", 1, "attempt to call"},
		{"no loadstring", "\nlocal f = loadstring(\"return {}\")\nreturn f()", 2, "attempt to call"},
		{"huge string.rep", "local s = string.rep(\"x\", 1e9)\nreturn {}", 1, "string.rep: result longer than"},
		{"not a table", "return 42", 1, "must return a table, not number"},
		{"unknown top-level field", "return {\n  domians = {},\n}", 2, `domians: unknown field`},
		{"domains not a table", "return {\n  domains = \"a.test\",\n}", 2, "domains: must be a table, not string"},
		{"not a domain", "return { domains = {\n  [\"localhost\"] = { keys = {} },\n} }", 2, `"localhost" is not a domain name`},
		{"no keys", "return { domains = {\n  [\"a.test\"] = { keys = {} },\n} }", 2, `domains["a.test"].keys: list at least one key`},
		{"unknown key field", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s\", algorithm = \"rsa-sha256\", path = \"keys/rsa1.pem\" },\n} } } }", 2, `keys[1].path: unknown field`},
		{"bad algorithm", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s\",\n    algorithm = \"rsa-sha1\", file = \"keys/rsa1.pem\" },\n} } } }", 3, `keys[1].algorithm: want "rsa-sha256" or "ed25519-sha256"`},
		{"bad selector", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s_1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" },\n} } } }", 2, `keys[1].selector: want a selector name`},
		{"missing key file", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s\", algorithm = \"rsa-sha256\",\n    file = \"keys/nope.pem\" },\n} } } }", 3, "no such file"},
		{"algorithm does not match the key", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s\", algorithm = \"rsa-sha256\", file = \"keys/ed1.pem\" },\n} } } }", 2, `holds an ed25519-sha256 key, but algorithm is "rsa-sha256"`},
		{"duplicate selector", "return { domains = { [\"a.test\"] = { keys = {\n  { selector = \"s\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" },\n  { selector = \"S\", algorithm = \"ed25519-sha256\", file = \"keys/ed1.pem\" },\n} } } }", 3, `selector "S" is listed twice`},
		{"two RSA keys without active", "return { domains = { [\"a.test\"] = {\n keys = {\n  { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" },\n  { selector = \"s2\", algorithm = \"rsa-sha256\", file = \"keys/rsa2.pem\" },\n} } } }", 2, "two rsa-sha256 keys (selectors s1 and s2)"},
		{"active names an unknown selector", "return { domains = { [\"a.test\"] = {\n  keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } },\n  active = { \"s1\", \"s9\" },\n} } }", 3, `active[2]: selector "s9" is not among the keys`},
		{"empty active", "return { domains = { [\"a.test\"] = {\n  keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } },\n  active = {},\n} } }", 3, "no active selector"},
		{"subdomains not a boolean", "return { domains = { [\"a.test\"] = {\n  keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } },\n  subdomains = \"yes\",\n} } }", 3, "subdomains: must be true or false"},
		{"platform without keys", "return {\n  platform = \"p.test\",\n}", 2, `platform: "p.test" has no entry in domains`},
		{"tenant without domain", "return { tenants = {\n  acme = {},\n} }", 2, "tenants.acme: missing domain"},
		{"tenant of an unknown domain", "return { tenants = {\n  acme = { domain = \"x.test\" },\n} }", 2, `"x.test" has no entry in domains`},
		{"tenant not allowed on the domain", "return { domains = { [\"a.test\"] = {\n  keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } },\n  tenants = { \"bolt\" },\n} },\ntenants = {\n  acme = { domain = \"a.test\" },\n} }", 6, `does not list tenant "acme"`},
		{"empty tenants list", "return { domains = { [\"a.test\"] = {\n  keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } },\n  tenants = {},\n} } }", 3, "tenants: empty"},
		{"headers without From", "return {\n  headers = { \"To\", \"Subject\" },\n  oversign = { \"Subject\" },\n}", 2, "must include From"},
		{"header listed twice", "return {\n  headers = { \"From\",\n \"from\" },\n}", 3, "headers[2]: from is listed twice"},
		{"DKIM-Signature in headers", "return {\n  headers = { \"From\", \"DKIM-Signature\" },\n}", 2, "cannot sign itself"},
		{"headers not a list", "return {\n  headers = { from = true },\n}", 2, "headers: must be a list"},
		{"domain listed twice", "return { domains = {\n  [\"A.test\"] = { keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } } },\n  [\"a.test\"] = { keys = { { selector = \"s1\", algorithm = \"rsa-sha256\", file = \"keys/rsa1.pem\" } } },\n} }", 3, "a.test is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(rulesDir(t, tc.src), nil)
			var le *luadata.Error
			if !errors.As(err, &le) {
				t.Fatalf("Load error = %v (%T), want *luadata.Error", err, err)
			}
			if le.Line != tc.line || !strings.Contains(le.Msg, tc.msg) || !strings.HasSuffix(le.File, FileName) {
				t.Errorf("Load error = %q, want line %d and %q", err, tc.line, tc.msg)
			}
			if want := le.File + ":" + strconv.Itoa(tc.line) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestLoadRunawayFile(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for the load time limit")
	}
	_, err := Load(rulesDir(t, "while true do end\nreturn {}"), nil)
	if err == nil || !strings.Contains(err.Error(), "must not loop") {
		t.Fatalf("Load error = %v, want a time limit error", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir(), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadDefaultsAndComputedValues(t *testing.T) {
	// A file may compute its table; lines of errors then fall back to the
	// return statement.
	r := loadRules(t, `local function rsa(s, f) return { selector = s, algorithm = "rsa-sha256", file = f } end
return { domains = { ["shop.test"] = { keys = { rsa("r1", "keys/rsa1.pem") } } } }`)
	var names []string
	for _, f := range r.fields {
		if f.oversign {
			names = append(names, f.name)
		}
	}
	if strings.Join(names, ",") != strings.Join(defaultOversign, ",") {
		t.Errorf("oversigned %v, want the defaults %v", names, defaultOversign)
	}
	if len(r.fields) != len(defaultHeaders) {
		t.Errorf("%d signed fields, want the %d defaults", len(r.fields), len(defaultHeaders))
	}
	_, err := Load(rulesDir(t, `local function k() return { selector = "r1", algorithm = "rsa", file = "keys/rsa1.pem" } end
return { domains = { ["shop.test"] = { keys = { k() } } } }`), nil)
	if err == nil || !strings.HasSuffix(strings.SplitN(err.Error(), ": ", 2)[0], ":2") {
		t.Errorf("Load error = %v, want it at the return statement, line 2", err)
	}
}

func TestLoadOversignAddsFields(t *testing.T) {
	r := loadRules(t, `return {
  headers = { "From", "Subject" },
  oversign = { "From", "X-Mailer-Campaign" },
  domains = { ["shop.test"] = { keys = { { selector = "e1", algorithm = "ed25519-sha256", file = "keys/ed1.pem" } } } },
}`)
	m := newMessage(t, "From: a@shop.test\r\nSubject: s\r\nTo: b@example.org\r\n\r\nbody\r\n", "")
	got := strings.Join(r.headerKeys(&m.Header), ":")
	if want := "From:From:Subject:X-Mailer-Campaign"; got != want {
		t.Errorf("h= %s, want %s", got, want)
	}
}

func TestKeyFormats(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := keyNamed(t, "rsa1").(*rsa.PrivateKey)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	smallPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})
	ecKey := []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	encrypted := []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n")
	for _, tc := range []struct {
		name, algorithm string
		data            []byte
		err             string
	}{
		{"PKCS#1 RSA with a comment above", RSASHA256, append([]byte("DEMO KEY: do not use.\n\n"), pkcs1...), ""},
		{"RSA under 2048 bits", RSASHA256, smallPEM, "RSA key of 1024 bits"},
		{"not PEM", RSASHA256, []byte("p=MIIB..."), "no PEM block"},
		{"EC key", RSASHA256, ecKey, `PEM block "EC PRIVATE KEY"`},
		{"encrypted", RSASHA256, encrypted, "encrypted"},
		{"corrupt PKCS#8", Ed25519SHA256, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "PKCS#8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rulesDir(t, `return { domains = { ["shop.test"] = { keys = {
  { selector = "s1", algorithm = "`+tc.algorithm+`", file = "k.pem" } } } } }`)
			if err := os.WriteFile(filepath.Join(dir, "k.pem"), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir, nil)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Load error = %v, want %q", err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), FileName+":2: ") {
				t.Errorf("error %q is not at line 2 of the rules file", err)
			}
		})
	}
}

// TestExposedKeyFileWarns: a key file group or others may read is warned
// about once per process, not at every load of rules/dkim.lua.
func TestExposedKeyFileWarns(t *testing.T) {
	for mode, warns := range map[os.FileMode]bool{0o600: false, 0o400: false, 0o640: true, 0o644: true} {
		dir := rulesDir(t, `return { domains = { ["shop.test"] = { keys = {
  { selector = "e1", algorithm = "ed25519-sha256",
    file = "keys/ed1.pem" } } } } }`)
		if err := os.Chmod(filepath.Join(dir, "keys", "ed1.pem"), mode); err != nil {
			t.Fatal(err)
		}
		for load := range 3 {
			var logs bytes.Buffer
			if _, err := Load(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
				t.Fatal(err)
			}
			got := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), FileName+":3")
			if want := warns && load == 0; got != want {
				t.Errorf("mode %o, load %d: warned = %v, want %v; logs:\n%s", mode, load, got, want, logs.String())
			}
		}
	}
}

// TestDemoKeyWarns: the shipped rules use the public demo keys, and Load
// says so, once per key file.
func TestDemoKeyWarns(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../rules")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		if _, err := Load(dir, log); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if n := strings.Count(logs.String(), "a demo key is in use"); n != len(keys) || n == 0 {
		t.Errorf("%d demo-key warnings for %d demo keys loaded twice:\n%s", n, len(keys), logs.String())
	}
}

func TestShippedRules(t *testing.T) {
	r, err := Load("../../rules", nil)
	if err != nil {
		t.Fatalf("the shipped rules/%s does not load: %v", FileName, err)
	}
	m := newMessage(t, strings.Replace(testMessage, "news@shop.test", "news@negozio-esempio.it", 1), "example")
	s, err := r.Sign(m)
	if err != nil || s.Domain != "negozio-esempio.it" || len(s.Selectors) != 2 {
		t.Fatalf("Sign = %+v, %v; want negozio-esempio.it with RSA and Ed25519", s, err)
	}
	for i, v := range verify(t, m.Bytes(), dnsOf(r)) {
		if v.Err != nil {
			t.Errorf("signature %d: %v", i, v.Err)
		}
	}
}
