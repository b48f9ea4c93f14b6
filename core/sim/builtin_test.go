package sim

import (
	"errors"
	"io/fs"
	"testing"
)

// TestBuiltInWorldIsTheRepositoryWorld checks LoadWorld("") gives the
// world built into the binary, the same as the repository's file, so that
// corriere sim and demo behave alike inside and outside the repository.
func TestBuiltInWorldIsTheRepositoryWorld(t *testing.T) {
	builtIn, err := LoadWorld("")
	if err != nil {
		t.Fatalf("built-in world: %v", err)
	}
	fromFile, err := LoadWorld("../../testdata/sim/world.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(builtIn.Providers) == 0 || len(builtIn.Providers) != len(fromFile.Providers) {
		t.Fatalf("built-in world has %d providers, the file %d", len(builtIn.Providers), len(fromFile.Providers))
	}
	for i := range builtIn.Providers {
		if builtIn.Providers[i].Name != fromFile.Providers[i].Name {
			t.Errorf("provider %d: built-in %q, file %q", i, builtIn.Providers[i].Name, fromFile.Providers[i].Name)
		}
	}
	if _, err := LoadWorld("no-such-world.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file gave %v, want not-exist", err)
	}
}
