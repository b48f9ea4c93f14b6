package main

import (
	"os"
	"testing"
)

// runMainEnv, set to 1 in a child process's environment, makes the test
// binary run as corriere itself instead of running the tests.
const runMainEnv = "CORRIERE_TEST_RUN_MAIN"

// TestMain lets the tests that need a corriere process (kill -9, a full
// disk) start this test binary as one: it holds the same main package, so
// they need no go build of their own.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}
