package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// API keys authenticate tenants on the HTTP injection API. A key is
// "<tenant>.<secret>": the tenant's name, a dot, and 64 hexadecimal digits
// of randomness (256 bits). The name lets the server find the tenant
// without trying every hash; the secret is what proves the caller. The
// tenant file stores only "sha256:" and the hexadecimal SHA-256 of the
// whole key: a key this random needs no slow hash (unlike a password, it
// cannot be guessed from a dictionary), so checking one costs
// microseconds, not the 60 ms of a bcrypt comparison per request.

// apiKeyHashPrefix starts every stored API key hash.
const apiKeyHashPrefix = "sha256:"

// secretLen is the length of a key's secret, in hexadecimal digits.
const secretLen = 64

// NewAPIKey returns a new API key for tenant name and its hash for the
// api_keys field of the tenant's file.
func NewAPIKey(name string) (key, hash string, err error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n") {
		return "", "", fmt.Errorf("tenant: API key: %q is not a tenant name", name)
	}
	var b [secretLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("tenant: API key: %w", err)
	}
	key = name + "." + hex.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns the stored form of key.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return apiKeyHashPrefix + hex.EncodeToString(sum[:])
}

// CheckAPIKeyHash reports why h is not a stored API key hash, or nil.
func CheckAPIKeyHash(h string) error {
	digits, ok := strings.CutPrefix(h, apiKeyHashPrefix)
	if !ok {
		return errors.New(`an API key hash starts with "sha256:" (make one with ` + "`corriere rules apikey`)")
	}
	if b, err := hex.DecodeString(digits); err != nil || len(b) != sha256.Size {
		return errors.New("an API key hash is \"sha256:\" and 64 hexadecimal digits")
	}
	return nil
}

// APIKeyTenant returns the tenant name a key claims, and false when key
// does not have the form of an API key.
func APIKeyTenant(key string) (string, bool) {
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || len(key)-i-1 != secretLen {
		return "", false
	}
	return key[:i], true
}

// CheckAPIKey reports whether key is one of the tenant's API keys, in time
// independent of which one matches.
func (t *Tenant) CheckAPIKey(key string) bool {
	h := HashAPIKey(key)
	match := 0
	for _, stored := range t.APIKeyHashes {
		match |= subtle.ConstantTimeCompare([]byte(h), []byte(stored))
	}
	return match == 1
}
