package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain runs this test binary as corriere itself when its first argument
// is not a flag (go test always passes -test.* flags first), as in
// "corriere.test serve --listen ...": the tests that need a corriere
// process (kill -9, a full disk) start the binary they run in, which holds
// the same main package, instead of building one.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		main()
	}
	os.Exit(m.Run())
}
