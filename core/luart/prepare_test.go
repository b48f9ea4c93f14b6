package luart

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"corriere/core/extension"
)

// filePreparer is a plugin whose policy is one file of the rules
// directory: it refuses the file when it says "broken", and records what
// it committed.
type filePreparer struct {
	committed []string
}

func (p *filePreparer) Prepare(rulesDir string) (func(), error) {
	file := filepath.Join(rulesDir, "plugin.data")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if string(data) == "broken" {
		return nil, &ScriptError{File: file, Line: 1, Msg: "broken"}
	}
	return func() { p.committed = append(p.committed, string(data)) }, nil
}

// TestPreparersJoinTheGeneration: a plugin's files are part of the
// generation. They are committed only with a generation that becomes
// current; a broken one refuses the generation like a broken script, and
// a broken script means nothing prepared is committed.
func TestPreparersJoinTheGeneration(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, nil)
	data := filepath.Join(rules, "plugin.data")
	writePolicyFile(t, data, "v1")
	p := &filePreparer{}
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Preparers: []extension.Preparer{p}})
	if len(p.committed) != 1 || p.committed[0] != "v1" {
		t.Fatalf("committed %q at start, want [v1]", p.committed)
	}

	writePolicyFile(t, data, "broken")
	var se *ScriptError
	if err := e.Reload(); !errors.As(err, &se) || se.Pos() != data+":1" {
		t.Errorf("reload with a broken plugin file: %v, want refused at %s:1", err, data)
	}
	if st := e.Status(); st.Generation != 1 || st.LastError != data+":1: broken" {
		t.Errorf("status after the refusal: generation %d, last error %q", st.Generation, st.LastError)
	}

	writePolicyFile(t, data, "v2")
	writePolicyFile(t, filepath.Join(scripts, "route.lua"), "function route(d) return {")
	if err := e.Reload(); err == nil {
		t.Error("reload with a broken script accepted")
	}
	writePolicyFile(t, filepath.Join(scripts, "route.lua"), "")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(p.committed) != 2 || p.committed[1] != "v2" || e.Status().Generation != 2 {
		t.Errorf("committed %q, generation %d; want [v1 v2] and 2", p.committed, e.Status().Generation)
	}

	writePolicyFile(t, data, "broken")
	if _, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout, Preparers: []extension.Preparer{&filePreparer{}}}); !errors.As(err, &se) {
		t.Errorf("New with a broken plugin file: %v, want a *ScriptError", err)
	}
}
