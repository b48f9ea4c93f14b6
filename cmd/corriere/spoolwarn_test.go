package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNewSpoolIsWarnedAbout checks serve warns when --spool names a
// directory that did not exist (a typo would start an empty queue and hide
// the queued mail), and not when it starts again on the same spool.
func TestNewSpoolIsWarnedAbout(t *testing.T) {
	const warning = "the spool directory does not exist"
	spool := filepath.Join(t.TempDir(), "spool")
	first := startServe(t, spool)
	first.kill()
	if !strings.Contains(first.logs(), warning) {
		t.Errorf("first start on a new spool: no warning:\n%s", first.logs())
	}
	second := startServe(t, spool)
	second.kill()
	if strings.Contains(second.logs(), warning) {
		t.Errorf("second start on the same spool warned:\n%s", second.logs())
	}
}
