package tracking

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The kinds of tracked URL.
const (
	kindOpen  = "o"
	kindClick = "c"
)

// claims is what a token says. Short JSON names keep the URLs short.
type claims struct {
	Kind     string `json:"k"`
	Host     string `json:"h"`
	Tenant   string `json:"t"`
	MsgID    string `json:"m"`
	Rcpt     string `json:"r,omitempty"`
	Class    string `json:"c,omitempty"`
	Campaign string `json:"g,omitempty"`
	URL      string `json:"u,omitempty"`
}

// macSize is the length of the truncated HMAC-SHA256 in a token: 128 bits.
const macSize = 16

// signer makes and checks tokens.
type signer struct{ key []byte }

var b64 = base64.RawURLEncoding

// token returns c signed: base64url(JSON) "." base64url(MAC).
func (s signer) token(c claims) string {
	payload, _ := json.Marshal(c) // claims holds only strings
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(s.mac(p))
}

func (s signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)[:macSize]
}

// errToken is the error of a token that does not verify.
var errToken = errors.New("tracking: token does not verify")

// verify returns the claims of a token whose MAC is right.
func (s signer) verify(token string) (claims, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return claims{}, errToken
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return claims{}, errToken
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return claims{}, errToken
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, errToken
	}
	return c, nil
}

// loadOrCreateKey reads the hex key in path, or makes one there.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("tracking: key %s: want at least 16 bytes in hex", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tracking: key: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails on Linux
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tracking: key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("tracking: key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("tracking: key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("tracking: key: %w", err)
	}
	return key, nil
}
