package dkim

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedVectors returns the directory of the shared DKIM test vectors
// (see its KEYS.txt), skipping the test when it is absent.
func sharedVectors(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "dkim")
	if _, err := os.Stat(filepath.Join(dir, "KEYS.txt")); err != nil {
		t.Skipf("shared DKIM vectors not available: %v", err)
	}
	return dir
}

func readVector(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pTag returns the p= tag of a key record.
func pTag(rec string) string {
	for _, tag := range strings.Split(rec, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(tag), "p="); ok {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}

// seedKey reads a base64 Ed25519 seed file, as RFC 8032 and RFC 8463 print
// keys.
func seedKey(t *testing.T, file string) ed25519.PrivateKey {
	t.Helper()
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(readVector(t, file)))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("%s: not an Ed25519 seed: %v", file, err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// TestVectorRecords checks that the records Record makes for published test
// keys are the ones their RFCs and test suites publish.
func TestVectorRecords(t *testing.T) {
	dir := sharedVectors(t)
	for _, tc := range []struct {
		name, keyFile, recordFile string
		ed25519Seed               bool
	}{
		{"RFC 8463 A.2 Ed25519 key", "go-msgauth/rfc8032-7.1-test1-ed25519-seed.b64", "go-msgauth/brisbane._domainkey.football.example.com.txt", true},
		{"dkimpy Ed25519 key", "dkimpy/ed25519test.key", "dkimpy/ed25519test.dns", true},
		{"RFC 6376 appendix C RSA key (PKCS#1)", "go-msgauth/rfc6376-appC-private.pem", "go-msgauth/brisbane._domainkey.example.com.txt", false},
		{"dkimpy RSA key (PKCS#1)", "dkimpy/test.private", "dkimpy/test.txt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k crypto.Signer
			if tc.ed25519Seed {
				k = seedKey(t, filepath.Join(dir, tc.keyFile))
			} else {
				var err error
				if k, err = parseKey([]byte(readVector(t, dir, tc.keyFile))); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := Record(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := pTag(rec), pTag(readVector(t, dir, tc.recordFile)); got != want {
				t.Errorf("p=%s\nwant p=%s", got, want)
			}
		})
	}
}

// TestVectorShortRSAKeysRefused loads the 1024-bit RSA keys of the test
// suites through rules/dkim.lua: they are refused, with the reason.
func TestVectorShortRSAKeysRefused(t *testing.T) {
	dir := sharedVectors(t)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go-msgauth/rfc6376-appC-private.pem", "dkimpy/test.private"} {
		_, err := Load(rulesDir(t, `return { domains = { ["example.com"] = { keys = {
  { selector = "brisbane", algorithm = "rsa-sha256", file = "`+filepath.Join(abs, f)+`" } } } } }`), nil)
		if err == nil || !strings.Contains(err.Error(), "RSA key of 1024 bits") {
			t.Errorf("%s: Load error = %v, want a refusal of 1024 bits", f, err)
		}
	}
}

// TestVectorSignWithRFC8463Key signs the test suites' messages with the RFC
// 8463 Ed25519 key and verifies them against the record RFC 8463 publishes.
func TestVectorSignWithRFC8463Key(t *testing.T) {
	dir := sharedVectors(t)
	rules := rulesDir(t, `return { domains = { ["football.example.com"] = { keys = {
  { selector = "brisbane", algorithm = "ed25519-sha256", file = "keys/rfc8463.pem" } } } } }`)
	writeKey(t, filepath.Join(rules, "keys", "rfc8463.pem"), seedKey(t, filepath.Join(dir, "go-msgauth/rfc8032-7.1-test1-ed25519-seed.b64")))
	r, err := Load(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	published := strings.TrimSpace(readVector(t, dir, "go-msgauth/brisbane._domainkey.football.example.com.txt"))
	lookup := func(name string) ([]string, error) {
		if name != "brisbane._domainkey.football.example.com" {
			t.Errorf("looked up %s", name)
		}
		return []string{published}, nil
	}
	for _, f := range []string{"go-msgauth/sign-input.eml", "go-msgauth/unsigned.eml", "dkimpy/rfc6376.msg"} {
		t.Run(f, func(t *testing.T) {
			raw := strings.ReplaceAll(strings.ReplaceAll(readVector(t, dir, f), "\r\n", "\n"), "\n", "\r\n")
			m := newMessage(t, raw, "")
			s, err := r.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			if s.Domain != "football.example.com" {
				t.Fatalf("signed as %+v, want d=football.example.com", s)
			}
			vs := verify(t, m.Bytes(), lookup)
			if len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verification: %+v", vs[0])
			}
		})
	}
}
