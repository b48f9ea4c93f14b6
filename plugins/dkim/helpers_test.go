package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"corriere/core/message"
)

// testKeys are generated once per test binary: RSA-2048 generation is slow.
var (
	testKeysOnce sync.Once
	testKeys     map[string]crypto.Signer
)

// keyNamed returns the test key of a name: names starting with "rsa" are
// RSA-2048 keys, the others Ed25519.
func keyNamed(t testing.TB, name string) crypto.Signer {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string]crypto.Signer{}
		for _, n := range []string{"rsa1", "rsa2", "rsa3"} {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys[n] = k
		}
		for _, n := range []string{"ed1", "ed2", "ed3"} {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			testKeys[n] = k
		}
	})
	k, ok := testKeys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

// writeKey writes k as a PKCS#8 PEM file of mode 0600.
func writeKey(t testing.TB, path string, k crypto.Signer) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rulesDir makes a rules directory holding dkim.lua with src and, under
// keys/, a file <name>.pem for every test key the source names as
// "keys/<name>.pem".
func rulesDir(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"rsa1", "rsa2", "rsa3", "ed1", "ed2", "ed3"} {
		if strings.Contains(src, "keys/"+name+".pem") {
			writeKey(t, filepath.Join(dir, "keys", name+".pem"), keyNamed(t, name))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// loadRules writes and loads a rules file.
func loadRules(t testing.TB, src string) *Rules {
	t.Helper()
	r, err := Load(rulesDir(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dnsOf serves the TXT records of every key of r, as a DNS zone would once
// they are published.
func dnsOf(rs ...*Rules) func(string) ([]string, error) {
	recs := map[string]string{}
	for _, r := range rs {
		for _, k := range r.Keys() {
			recs[strings.TrimSuffix(k.RecordName, ".")] = k.Record
		}
	}
	return func(name string) ([]string, error) {
		if rec, ok := recs[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
			return []string{rec}, nil
		}
		return nil, fmt.Errorf("no TXT record for %s", name)
	}
}

// verify returns go-msgauth's verdicts on raw, top signature first.
func verify(t testing.TB, raw []byte, lookup func(string) ([]string, error)) []*msgdkim.Verification {
	t.Helper()
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(raw), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return vs
}

// newMessage parses raw into a message of a tenant.
func newMessage(t testing.TB, raw, tenant string) *message.Message {
	t.Helper()
	h, body, err := message.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &message.Message{ID: "test-1", Header: h, Body: body, Tenant: tenant,
		Envelope: message.Envelope{Sender: "app@shop.test"}}
}

// crlf turns "\n" line ends into "\r\n".
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// testMessage is a realistic newsletter of a few header fields.
var testMessage = crlf(`From: "Negozio Esempio" <news@shop.test>
To: Mario Rossi <mario.rossi@gmail.example>
Subject: =?UTF-8?Q?Saldi_d=27estate:_fino_al_50=25?=
Date: Tue, 25 Nov 2025 10:00:00 +0100
Message-ID: <20251125100000.abc@shop.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit
List-Unsubscribe: <https://shop.test/u/abc>, <mailto:unsub@shop.test?subject=abc>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
Feedback-ID: summer:shop:newsletter:corriere

Ciao Mario,

i saldi d'estate sono iniziati: fino al 50% su tutto il catalogo.   
Trailing spaces and	tabs are left as they are.

-- 
Negozio Esempio
`)
