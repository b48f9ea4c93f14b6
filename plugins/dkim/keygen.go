package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"corriere/core/address"
)

// KeyOptions say which key GenerateKey makes.
type KeyOptions struct {
	// Domain is the signing domain (d=).
	Domain string
	// Selector names the key under Domain's _domainkey.
	Selector string
	// Algorithm is RSASHA256 or Ed25519SHA256. The default value is
	// RSASHA256, which every receiver verifies.
	Algorithm string
	// Bits is the RSA modulus size, at least MinRSABits. The default value
	// is 2048: larger keys need TXT records that some DNS providers cut.
	Bits int
}

// KeyPair is a new key pair with what to publish for it.
type KeyPair struct {
	// Domain, Selector and Algorithm are as requested (Domain normalised).
	Domain, Selector, Algorithm string
	// PEM is the private key, PKCS#8, ready for a file of mode 0600.
	PEM []byte
	// RecordName is the DNS name of the TXT record, with the final dot.
	RecordName string
	// Record is the TXT record's value, "v=DKIM1; k=...; p=...".
	Record string
}

// GenerateKey makes a key pair for a domain and selector.
func GenerateKey(opts KeyOptions) (*KeyPair, error) {
	dom, err := address.NormalizeDomain(opts.Domain)
	if err != nil || strings.HasPrefix(dom, "[") || !strings.Contains(dom, ".") {
		return nil, fmt.Errorf("dkim: keygen: %q is not a domain name", opts.Domain)
	}
	if !selector.MatchString(opts.Selector) {
		return nil, fmt.Errorf("dkim: keygen: %q is not a selector (letters, digits, - and .)", opts.Selector)
	}
	k := &KeyPair{Domain: dom, Selector: opts.Selector, Algorithm: opts.Algorithm}
	if k.Algorithm == "" {
		k.Algorithm = RSASHA256
	}
	var priv crypto.Signer
	switch k.Algorithm {
	case RSASHA256:
		bits := opts.Bits
		if bits == 0 {
			bits = 2048
		}
		if bits < MinRSABits {
			return nil, fmt.Errorf("dkim: keygen: %d bits: receivers ignore RSA keys under %d bits", bits, MinRSABits)
		}
		if priv, err = rsa.GenerateKey(rand.Reader, bits); err != nil {
			return nil, fmt.Errorf("dkim: keygen: %w", err)
		}
	case Ed25519SHA256:
		if opts.Bits != 0 {
			return nil, errors.New("dkim: keygen: Ed25519 keys have no size to choose")
		}
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("dkim: keygen: %w", err)
		}
	default:
		return nil, fmt.Errorf("dkim: keygen: algorithm %q: want %q or %q", k.Algorithm, RSASHA256, Ed25519SHA256)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("dkim: keygen: %w", err)
	}
	k.PEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if k.Record, err = Record(priv.Public()); err != nil {
		return nil, err
	}
	k.RecordName = k.Selector + "._domainkey." + k.Domain + "."
	return k, nil
}

// Record returns the DNS TXT value that publishes a public key:
// "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>" for RSA (RFC 6376 section
// 3.6.1), "v=DKIM1; k=ed25519; p=<32 raw bytes>" for Ed25519 (RFC 8463
// section 4), base64-encoded.
func Record(pub crypto.PublicKey) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("dkim: record: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	default:
		return "", fmt.Errorf("dkim: record: unsupported public key %T", pub)
	}
}

// SplitTXT splits a TXT value into the strings of at most 255 octets that
// one TXT record holds; receivers join them back without separators.
func SplitTXT(value string) []string {
	var out []string
	for len(value) > 255 {
		out = append(out, value[:255])
		value = value[255:]
	}
	return append(out, value)
}

// QuotedTXT returns value as the quoted strings of a zone file or a DNS
// provider's form: "first 255 octets" "rest".
func QuotedTXT(value string) string {
	parts := SplitTXT(value)
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, " ")
}

// ZoneLine returns the record as a zone file line with the given TTL.
func (k *KeyPair) ZoneLine(ttl int) string {
	return fmt.Sprintf("%s %d IN TXT %s", k.RecordName, ttl, QuotedTXT(k.Record))
}

// FileName returns the conventional name of the key's file:
// "<domain>.<selector>.<rsa|ed25519>.pem".
func (k *KeyPair) FileName() string {
	kind := "rsa"
	if k.Algorithm == Ed25519SHA256 {
		kind = "ed25519"
	}
	return k.Domain + "." + k.Selector + "." + kind + ".pem"
}

// RulesSnippet returns the rules/dkim.lua entry that signs with this key
// alone; file is the key file's path relative to the rules directory.
func (k *KeyPair) RulesSnippet(file string) string {
	return fmt.Sprintf(`  [%q] = {
    keys = {
      { selector = %q, algorithm = %q, file = %q },
    },
    active = { %q },
  },
`, k.Domain, k.Selector, k.Algorithm, filepath.ToSlash(file), k.Selector)
}

// WriteKeyFile writes pem to a new file of mode 0600; it never replaces an
// existing file, which may be a key in use.
func WriteKeyFile(path string, pemData []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("dkim: write key: %w", err)
	}
	if _, err := f.Write(pemData); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("dkim: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("dkim: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("dkim: write key: %w", err)
	}
	return nil
}
