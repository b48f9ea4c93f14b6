package dkim

import (
	"crypto"
	"io/fs"
	"log/slog"
	"sync"

	"corriere"
)

// keyWarnings holds the warnings already given about key files, so that
// each is logged once per process rather than at every load of
// rules/dkim.lua (at start, at each reload, by rules check).
var keyWarnings sync.Map

// warnOnce logs msg the first time it is called with key.
func warnOnce(log *slog.Logger, key, msg string, args ...any) {
	if _, seen := keyWarnings.LoadOrStore(key, true); !seen {
		log.Warn(msg, args...)
	}
}

// demoKeys are the public halves of the demo keys in the default policy's
// rules/keys, whose private halves anyone can read in the repository.
var demoKeys = sync.OnceValue(func() []crypto.PublicKey {
	var out []crypto.PublicKey
	rules := corriere.Rules()
	names, _ := fs.Glob(rules, "keys/*.pem")
	for _, name := range names {
		data, err := fs.ReadFile(rules, name)
		if err != nil {
			continue
		}
		if k, err := parseKey(data); err == nil {
			out = append(out, k.Public())
		}
	}
	return out
})

// isDemoKey reports whether signer is one of the demo keys.
func isDemoKey(signer crypto.Signer) bool {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return false
	}
	for _, d := range demoKeys() {
		if pub.Equal(d) {
			return true
		}
	}
	return false
}
