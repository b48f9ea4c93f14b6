// Package corriere carries what the binary needs to run without the
// repository: the default Lua policy (scripts/ and rules/) and the
// simulator's world (testdata/sim/). `corriere init` writes an editable
// copy of the policy; `corriere demo` and `corriere sim` run on these
// copies when no files are given, from any directory.
//
// The files are the repository's own, embedded at build time, so the
// defaults a binary carries are exactly those its commit shipped.
package corriere

import (
	"embed"
	"io/fs"
)

//go:embed scripts rules testdata/sim
var defaults embed.FS

// Scripts returns the default hook scripts (the repository's scripts/).
func Scripts() fs.FS { return sub("scripts") }

// Rules returns the default policy data (the repository's rules/),
// including the public demo DKIM keys in keys/.
func Rules() fs.FS { return sub("rules") }

// SimWorld returns the simulator's world directory (the repository's
// testdata/sim/): world.json and the keys it names.
func SimWorld() fs.FS { return sub("testdata/sim") }

// sub returns the embedded directory dir; the names are fixed above, so
// an error is a build defect.
func sub(dir string) fs.FS {
	f, err := fs.Sub(defaults, dir)
	if err != nil {
		panic("corriere: embedded " + dir + ": " + err.Error())
	}
	return f
}
