package luart

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"corriere/core/message"
	"corriere/core/policy"
)

// repoRoot is the repository root, where the shipped scripts/ and rules/
// live, relative to this package.
const repoRoot = "../.."

var testdataDir = filepath.Join(repoRoot, "testdata", "luart")

// policyDirs copies the shipped scripts/ and rules/ into a temporary
// directory, then writes files (path relative to that directory, such as
// "scripts/tenants/x.lua"; empty content deletes the file), and returns the
// two directories.
func policyDirs(t testing.TB, files map[string]string) (scripts, rules string) {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"scripts", "rules"} {
		src := filepath.Join(repoRoot, dir)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, path)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(root, rel), 0o755)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for rel, content := range files {
		writePolicyFile(t, filepath.Join(root, rel), content)
	}
	return filepath.Join(root, "scripts"), filepath.Join(root, "rules")
}

// writePolicyFile writes (or, for empty content, removes) one file.
func writePolicyFile(t testing.TB, path, content string) {
	t.Helper()
	if content == "" {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testdataTenant returns the content of testdata/luart/tenants/<name>.lua.
func testdataTenant(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdataDir, "tenants", name+".lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// newEngine loads a policy; opts.ScriptsDir and RulesDir must be set.
// testCallTimeout is the hook budget of engines in tests that are not
// about budgets: the default 100ms can pass while a hook waits for a CPU on
// a busy machine, the more so with tests running in parallel. The budget
// tests set their own.
const testCallTimeout = 10 * time.Second

// newEngine returns an engine of opts, with testCallTimeout as its hook
// budget unless opts sets one.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.CallTimeout == 0 {
		opts.CallTimeout = testCallTimeout
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// defaultEngine loads the shipped policy plus the testdata tenants.
func defaultEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	opts.ScriptsDir, opts.RulesDir = policyDirs(t, map[string]string{
		"rules/tenants/clinic.lua": testdataTenant(t, "clinic"),
	})
	return newEngine(t, opts)
}

// loadMessage reads testdata/luart/messages/<name> as a message from
// tenant, with the given envelope recipients (or the To: address).
func loadMessage(t testing.TB, name, tenant string, rcpts ...string) *message.Message {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, "messages", name))
	if err != nil {
		t.Fatal(err)
	}
	h, body, err := message.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{
		ID:       name,
		Header:   h,
		Body:     body,
		Tenant:   tenant,
		AuthUser: tenant,
		Received: time.Date(2025, 6, 3, 12, 0, 0, 0, time.UTC),
	}
	m.Sender = fromAddress(h)
	if len(rcpts) == 0 {
		rcpts = []string{h.Get("To")}
	}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, message.Recipient{Addr: r})
	}
	return m
}

// memCounters is a settable policy.Counters for routing tests.
type memCounters struct {
	mu sync.Mutex
	m  map[[3]string]policy.Counts
}

func (c *memCounters) set(source, provider string, n policy.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[3]string]policy.Counts{}
	}
	c.m[[3]string{source, provider, ""}] = n
}

func (c *memCounters) Counts(source, provider, class string, _ time.Duration) policy.Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[[3]string{source, provider, class}]
}

var threeSources = []policy.Source{
	{IP: "192.0.2.10", Helo: "out10.mta.example.net"},
	{IP: "192.0.2.11", Helo: "out11.mta.example.net"},
	{IP: "192.0.2.12", Helo: "out12.mta.example.net"},
}
