package luart_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"corriere/core/luart"
	"corriere/core/message"
)

// writePolicy lays out a minimal policy: one default hook script, one
// tenant override and an empty rules directory.
func writePolicy(files map[string]string) (scripts, rules string) {
	root, err := os.MkdirTemp("", "luart-example")
	if err != nil {
		panic(err)
	}
	for rel, content := range files {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			panic(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			panic(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "rules"), 0o755); err != nil {
		panic(err)
	}
	return filepath.Join(root, "scripts"), filepath.Join(root, "rules")
}

// A classify hook reads the message through its methods; a tenant file
// overrides it for one tenant and can call the default.
func Example() {
	scripts, rules := writePolicy(map[string]string{
		"scripts/classify.lua": `
function classify(msg)
  if msg:has_header("List-Id") then
    return { class = "newsletter" }
  end
  return { class = "transactional", priority = 50 }
end
`,
		"scripts/tenants/acme.lua": `
function classify(msg)
  local c = defaults.classify(msg)
  if (msg:subject() or ""):find("^Alert") then
    c.class, c.priority = "critical", 100
  end
  return c
end
`,
	})
	defer os.RemoveAll(filepath.Dir(scripts))

	e, err := luart.New(luart.Options{ScriptsDir: scripts, RulesDir: rules})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tenant := range []string{"acme", "other"} {
		h, body, _ := message.Parse([]byte("From: ops@acme.example\r\nSubject: Alert: disk full\r\n\r\nHi\r\n"))
		m := &message.Message{Header: h, Body: body, Tenant: tenant}
		c, err := e.Classify(context.Background(), m)
		fmt.Println(tenant, c.Class, c.Priority, err)
	}
	// Output:
	// acme critical 100 <nil>
	// other transactional 50 <nil>
}

// Check refuses a policy that does not load, naming the file and line.
func ExampleCheck() {
	scripts, rules := writePolicy(map[string]string{
		"scripts/classify.lua": "function classify(msg)\n  return { class = \"newsletter\" }\nedn\n",
	})
	defer os.RemoveAll(filepath.Dir(scripts))

	err := luart.Check(scripts, rules)
	var se *luart.ScriptError
	if errors.As(err, &se) {
		fmt.Printf("%s:%d: %s\n", filepath.Base(se.File), se.Line, se.Msg)
	}
	// Output:
	// classify.lua:3: syntax error near 'edn'
}
