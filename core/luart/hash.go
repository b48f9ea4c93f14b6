package luart

import (
	"crypto/sha256"
	"encoding/hex"
)

// filesHash returns the SHA-256, in hex, of the generation's files: their
// kinds, names and contents, in load order, not where the directories are.
// Two nodes on the same policy files have the same hash, so a node left on
// an old policy stands out.
func (g *generation) filesHash() string {
	h := sha256.New()
	for _, s := range g.sources {
		h.Write([]byte{byte(s.kind)})
		h.Write([]byte(s.name))
		h.Write([]byte{0})
		h.Write(s.sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
