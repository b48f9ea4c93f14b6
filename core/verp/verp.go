// Package verp makes and checks the variable envelope return paths (VERP)
// of re-enveloped mail: an envelope sender per recipient on the platform's
// bounce domain that says which message and which recipient a bounce is
// about, signed so that nobody else can make one. With the same key it
// seals the reference header (RefHeader) every message leaves with, which
// lets a complaint that quotes only the message's header section be
// attributed (reference.go).
//
// An address looks like
//
//	bounces+0r3f...k2q-3-7hx2m4q8zt5ya1cd@bounces.example.net
//
// where "bounces@bounces.example.net" is the base address (the envelope
// sender the policy chose), then the spool message ID, the recipient's
// index in the envelope, and an HMAC-SHA256 of the three (truncated to 80
// bits, base32) under a key only this platform knows. A bounce to an
// address whose tag does not verify is a forgery or a mangled address, and
// is never trusted: it cannot suppress a recipient or reach an author.
//
// Receivers and relays may change the case of a local part, so the tag
// uses only lower-case letters and digits and is checked without regard
// to case.
package verp

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KeySize is the size of a generated key in bytes; MinKeySize the least a
// configured key may have.
const (
	KeySize    = 32
	MinKeySize = 16
)

// macLen is how many bytes of the HMAC the tag keeps: 80 bits, enough
// that guessing a valid tag for a chosen recipient is hopeless, short
// enough that the local part stays within RFC 5321's 64 octets.
const macLen = 10

// maxLocal is the longest local part RFC 5321 allows (section 4.5.3.1.1).
const maxLocal = 64

// shortBase replaces a base local part too long to carry the tag.
const shortBase = "b"

// Errors returned by Parse.
var (
	// ErrNotVERP means the address does not have the shape of a VERP
	// address: it is not a bounce address of this platform.
	ErrNotVERP = errors.New("verp: not a VERP address")
	// ErrForged means the address has the shape but its tag does not
	// verify: someone made it up, or it was altered on the way.
	ErrForged = errors.New("verp: tag does not verify")
)

// tagEncoding is base32 in lower case without padding.
var tagEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Ref is what a VERP address refers to: one recipient of one message.
type Ref struct {
	// MsgID is the spool ID of the message.
	MsgID string
	// Index is the recipient's position in the message's envelope.
	Index int
}

// Signer makes and checks VERP addresses with one key.
type Signer struct {
	key  []byte
	aead cipher.AEAD // seals reference headers (reference.go)
}

// New returns a Signer with key, which must have at least MinKeySize bytes.
func New(key []byte) (*Signer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("verp: key of %d bytes; at least %d are needed", len(key), MinKeySize)
	}
	return &Signer{key: append([]byte(nil), key...), aead: newAEAD(key)}, nil
}

// Address returns the VERP address for recipient index of message msgID,
// built on base ("bounces@bounces.example.net"). A base without a domain
// is returned unchanged: there is nowhere to send bounces.
func (s *Signer) Address(base, msgID string, index int) string {
	at := strings.LastIndexByte(base, '@')
	if at <= 0 || msgID == "" || index < 0 {
		return base
	}
	local, domain := base[:at], strings.ToLower(base[at+1:])
	tag := strings.ToLower(msgID) + "-" + strconv.Itoa(index) + "-" + s.mac(msgID, index, domain)
	if len(local)+1+len(tag) > maxLocal {
		local = shortBase
	}
	return local + "+" + tag + "@" + domain
}

// Parse checks a VERP address and returns what it refers to. It returns
// ErrNotVERP for addresses without a tag and ErrForged for tags that do
// not verify.
func (s *Signer) Parse(addr string) (Ref, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return Ref{}, ErrNotVERP
	}
	local, domain := strings.ToLower(addr[:at]), strings.ToLower(addr[at+1:])
	plus := strings.LastIndexByte(local, '+')
	if plus < 0 {
		return Ref{}, ErrNotVERP
	}
	parts := strings.Split(local[plus+1:], "-")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return Ref{}, ErrNotVERP
	}
	index, err := strconv.Atoi(parts[1])
	if err != nil || index < 0 || strconv.Itoa(index) != parts[1] {
		return Ref{}, ErrNotVERP
	}
	want := s.mac(parts[0], index, domain)
	if !hmac.Equal([]byte(parts[2]), []byte(want)) {
		return Ref{}, ErrForged
	}
	return Ref{MsgID: parts[0], Index: index}, nil
}

// mac returns the tag's signature of (msgID, index, domain).
func (s *Signer) mac(msgID string, index int, domain string) string {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(strings.ToLower(msgID)))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(index)))
	h.Write([]byte{0})
	h.Write([]byte(domain))
	return tagEncoding.EncodeToString(h.Sum(nil)[:macLen])
}

// LoadOrCreateKey reads a hex-encoded key from path; when the file does
// not exist it makes a random key and writes it there (mode 0600), so a
// node keeps its key across restarts and bounces to addresses it made
// before still verify.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("verp: key file %s: not hex: %w", path, err)
		}
		if len(key) < MinKeySize {
			return nil, fmt.Errorf("verp: key file %s: %d bytes; at least %d are needed", path, len(key), MinKeySize)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("verp: key file: %w", err)
	}
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails on Linux
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("verp: create key file: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("verp: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("verp: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("verp: write key file: %w", err)
	}
	// The new name must survive a crash too: a lost key makes every
	// address issued with it fail to verify.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("verp: sync key directory: %w", err)
		}
	}
	return key, nil
}
