package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// The signing algorithms (the a= tag) Corriere signs with.
const (
	// RSASHA256 is "rsa-sha256" (RFC 6376), which every receiver verifies.
	RSASHA256 = "rsa-sha256"
	// Ed25519SHA256 is "ed25519-sha256" (RFC 8463): short keys and fast
	// signatures, verified by a growing share of receivers.
	Ed25519SHA256 = "ed25519-sha256"
)

// MinRSABits is the smallest RSA key accepted: receivers such as Gmail and
// Yahoo treat shorter keys as no signature at all.
const MinRSABits = 2048

// readKey reads a PEM private key file: PKCS#8 ("PRIVATE KEY", RSA or
// Ed25519) or PKCS#1 ("RSA PRIVATE KEY"). Text before the PEM block (a
// comment saying what the key is for) is ignored. worldReadable reports
// whether group or others may read the file.
func readKey(path string) (signer crypto.Signer, worldReadable bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, errors.New("not a regular file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	signer, err = parseKey(data)
	return signer, st.Mode().Perm()&0o077 != 0, err
}

// parseKey decodes the first PEM block of data as a private key.
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: want a -----BEGIN PRIVATE KEY----- file")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, errors.New("the key is encrypted; store it unencrypted with mode 0600")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8: %w", err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("a %T key: DKIM signs with RSA or Ed25519", k)
		}
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#1: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY (PKCS#1)", block.Type)
	}
}

// algorithmOf returns the DKIM algorithm a key signs with.
func algorithmOf(k crypto.Signer) string {
	if _, ok := k.Public().(ed25519.PublicKey); ok {
		return Ed25519SHA256
	}
	return RSASHA256
}

// checkKey refuses a key that does not match the configured algorithm or
// is too weak.
func checkKey(k crypto.Signer, algorithm string) error {
	if got := algorithmOf(k); got != algorithm {
		return fmt.Errorf("the file holds an %s key, but algorithm is %q", got, algorithm)
	}
	if pub, ok := k.Public().(*rsa.PublicKey); ok && pub.N.BitLen() < MinRSABits {
		return fmt.Errorf("RSA key of %d bits; receivers ignore keys under %d bits (make one with `corriere dkim keygen`)", pub.N.BitLen(), MinRSABits)
	}
	return nil
}
