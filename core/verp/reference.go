package verp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// RefHeader is the name of the reference header: one on every message
// that leaves, naming the transaction it left in.
const RefHeader = "X-Corriere-Ref"

// refVersion starts every reference value, so that the format can change
// without old references being taken for forgeries of new ones.
const refVersion = "1."

// ErrNotReference means a value does not have the shape of a reference of
// this platform.
var ErrNotReference = errors.New("verp: not a reference")

// Reference is what a reference header names: the recipient a message was
// delivered to, and who sent it, what kind of mail, where from and to
// which provider, so
// that a complaint quoting only the message's header section can be
// attributed and counted without the spool keeping anything.
type Reference struct {
	// Tenant is the message's tenant ("" for the platform's own mail).
	Tenant string
	// MsgID is the spool ID of the message.
	MsgID string
	// Index is the recipient's position in the envelope, or -1 when the
	// transaction carried several recipients: then Rcpt is empty.
	Index int
	// Rcpt is the recipient's address.
	Rcpt string
	// Source is the IP address the message left from.
	Source string
	// Provider is the provider the recipient's domain belongs to.
	Provider string
	// Class is the message's class ("newsletter", ...).
	Class string
}

// refFields is how many fields a sealed reference holds.
const refFields = 7

// maxRefValue bounds the reference values Open looks at: a sealed
// reference of the longest fields fits.
const maxRefValue = 2048

// refKey derives the key that seals references from the VERP key, so one
// secret signs both and one rotation replaces both.
func refKey(key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("corriere reference header v1"))
	return h.Sum(nil)
}

// newAEAD returns the AES-256-GCM cipher that seals references.
func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(refKey(key))
	if err != nil {
		panic("verp: AES with a 32-byte key: " + err.Error()) // cannot happen: the key is a SHA-256 sum
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("verp: GCM: " + err.Error()) // cannot happen: AES has a 16-byte block
	}
	return aead
}

// Seal returns the value of the reference header for r: "1." and the
// base64url of a random nonce and r, encrypted and authenticated (AES-GCM
// under a key derived from the VERP key). The recipient is encrypted, not
// only signed: feedback loops redact the recipient's address from the
// reports they send, and a readable copy in a header would undo that.
func (s *Signer) Seal(r Reference) string {
	plain := strings.Join([]string{r.Tenant, r.MsgID, strconv.Itoa(r.Index), r.Rcpt, r.Source, r.Provider, r.Class}, "\x00")
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on Linux
	sealed := s.aead.Seal(nonce, nonce, []byte(plain), []byte(RefHeader))
	return refVersion + base64.RawURLEncoding.EncodeToString(sealed)
}

// Open checks a reference header's value and returns what it names. It
// returns ErrNotReference for values without the shape of one and
// ErrForged for values that do not verify: made up, altered, or sealed
// with another key.
func (s *Signer) Open(value string) (Reference, error) {
	value = strings.TrimSpace(value)
	if !strings.HasPrefix(value, refVersion) || len(value) > maxRefValue {
		return Reference{}, ErrNotReference
	}
	// Strict: the unused bits of the last character must be zero, so that
	// one reference has one spelling.
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(value[len(refVersion):])
	if err != nil || len(sealed) < s.aead.NonceSize()+s.aead.Overhead() {
		return Reference{}, ErrNotReference
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(RefHeader))
	if err != nil {
		return Reference{}, ErrForged
	}
	f := strings.Split(string(plain), "\x00")
	if len(f) != refFields {
		return Reference{}, ErrForged
	}
	index, err := strconv.Atoi(f[2])
	if err != nil || index < -1 || f[1] == "" {
		return Reference{}, ErrForged
	}
	return Reference{Tenant: f[0], MsgID: f[1], Index: index, Rcpt: f[3], Source: f[4], Provider: f[5], Class: f[6]}, nil
}
