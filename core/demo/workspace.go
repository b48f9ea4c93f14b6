package demo

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"golang.org/x/crypto/bcrypt"

	"corriere"
)

// policyFiles are the demo tenants' account files and hooks, written into
// the workspace's copy of the policy.
//
//go:embed policy/*.tmpl
var policyFiles embed.FS

var policyTemplates = template.Must(template.ParseFS(policyFiles, "policy/*.tmpl"))

// workspace is the demo's directory: a copy of the policy with the demo
// tenants, the spool, the event log and the log.
type workspace struct {
	dir     string
	scripts string
	rules   string
	spool   string
	events  string
	log     string
	// temp is set when the workspace is a fresh temporary directory, whose
	// copies of the policy and spool are removed at the end.
	temp bool
	// passwords are the demo tenants' SMTP AUTH passwords, made for this
	// run; only their bcrypt hashes are written.
	passwords map[string]string
}

// newWorkspace prepares the workspace in keep (which must be empty or
// absent) or in a new temporary directory: it copies scriptsDir and
// rulesDir, and adds the demo tenants with fresh passwords and the hooks
// that compress time.
func newWorkspace(keep, scriptsDir, rulesDir string, speedup, maxDelay int) (*workspace, error) {
	ws := &workspace{passwords: map[string]string{}}
	if keep != "" {
		if err := os.MkdirAll(keep, 0o750); err != nil {
			return nil, fmt.Errorf("demo: workspace: %w", err)
		}
		entries, err := os.ReadDir(keep)
		if err != nil {
			return nil, fmt.Errorf("demo: workspace: %w", err)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("demo: workspace %s is not empty; give a new or empty directory", keep)
		}
		ws.dir = keep
	} else {
		dir, err := os.MkdirTemp("", "corriere-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: workspace: %w", err)
		}
		ws.dir, ws.temp = dir, true
	}
	ws.scripts = filepath.Join(ws.dir, "scripts")
	ws.rules = filepath.Join(ws.dir, "rules")
	ws.spool = filepath.Join(ws.dir, "spool")
	ws.events = filepath.Join(ws.dir, "events.jsonl")
	ws.log = filepath.Join(ws.dir, "corriere.log")

	for _, c := range []struct {
		from     string
		builtIn  fs.FS
		to, name string
	}{{scriptsDir, corriere.Scripts(), ws.scripts, "scripts"}, {rulesDir, corriere.Rules(), ws.rules, "rules"}} {
		src, what := c.builtIn, "the built-in "+c.name
		if c.from != "" {
			src, what = os.DirFS(c.from), c.from
		}
		if err := os.CopyFS(c.to, src); err != nil {
			ws.cleanup()
			return nil, fmt.Errorf("demo: copy the policy from %s: %w", what, err)
		}
	}
	for _, tenant := range []string{tenantShop, tenantPlatform} {
		if err := ws.addTenant(tenant, speedup, maxDelay); err != nil {
			ws.cleanup()
			return nil, err
		}
	}
	return ws, nil
}

// addTenant writes rules/tenants/<tenant>.lua with a bcrypt hash of a new
// random password, and scripts/tenants/<tenant>.lua with the time-
// compressing hooks.
func (ws *workspace) addTenant(tenant string, speedup, maxDelay int) error {
	password := rand.Text()
	// The cheapest cost is plenty for a password that lives one run.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("demo: tenant %s: %w", tenant, err)
	}
	ws.passwords[tenant] = password
	data := map[string]any{"Tenant": tenant, "PasswordHash": string(hash), "Speedup": speedup, "MaxDelay": maxDelay}
	for _, f := range []struct{ tmpl, path string }{
		{tenant + ".lua.tmpl", filepath.Join(ws.rules, "tenants", tenant+".lua")},
		{"hooks.lua.tmpl", filepath.Join(ws.scripts, "tenants", tenant+".lua")},
	} {
		var b bytes.Buffer
		if err := policyTemplates.ExecuteTemplate(&b, f.tmpl, data); err != nil {
			return fmt.Errorf("demo: tenant %s: %w", tenant, err)
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
			return fmt.Errorf("demo: tenant %s: %w", tenant, err)
		}
		if _, err := os.Stat(f.path); err == nil {
			return fmt.Errorf("demo: tenant %s: %s already exists in the policy that was copied", tenant, f.path)
		}
		if err := os.WriteFile(f.path, b.Bytes(), 0o640); err != nil {
			return fmt.Errorf("demo: tenant %s: %w", tenant, err)
		}
	}
	return nil
}

// addPoolLimits edits the copy of rules/pools.lua: it puts warming on day
// 1 of a warm-up schedule (at most dailyCap messages per provider today,
// after which scripts/route.lua moves its traffic to the pool's warm IPs),
// and caps every other source to conns connections per provider, below the
// simulated providers' connection limits. It reports false, changing
// nothing, when the copy has no "warmup" table in the shipped layout.
func (ws *workspace) addPoolLimits(warming string, dailyCap int, others []string, conns int, today time.Time) (bool, error) {
	path := filepath.Join(ws.rules, "pools.lua")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("demo: pools: %w", err)
	}
	const anchor = "\n  warmup = {\n"
	if bytes.Count(b, []byte(anchor)) != 1 {
		return false, nil
	}
	var entries strings.Builder
	fmt.Fprintf(&entries, "    -- Added by corriere demo: %[1]s is a new IP on day 1 of its warm-up,\n"+
		"    -- allowed %[2]d messages per provider today; then its traffic moves\n"+
		"    -- to the pool's warm IPs.\n"+
		"    [%[1]q] = { start = %[3]q, daily = { %[2]d, %[4]d, %[5]d }, connections = 2 },\n",
		warming, dailyCap, today.UTC().Format(time.DateOnly), 2*dailyCap, 4*dailyCap)
	fmt.Fprintf(&entries, "    -- Added by corriere demo: the simulated providers take 3 to 5\n"+
		"    -- connections per IP; more are refused with 421.\n")
	for _, ip := range others {
		fmt.Fprintf(&entries, "    [%q] = { connections = %d },\n", ip, conns)
	}
	b = bytes.Replace(b, []byte(anchor), []byte(anchor+entries.String()), 1)
	if err := os.WriteFile(path, b, 0o640); err != nil {
		return false, fmt.Errorf("demo: pools: %w", err)
	}
	return true, nil
}

// cleanup removes a temporary workspace's policy copy and spool, keeping
// the event log and the log for inspection. A kept workspace stays whole.
func (ws *workspace) cleanup() error {
	if !ws.temp {
		return nil
	}
	var errs []error
	for _, d := range []string{ws.scripts, ws.rules, ws.spool} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("demo: remove %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
