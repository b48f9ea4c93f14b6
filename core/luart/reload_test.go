package luart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"corriere/core/event"
	"corriere/core/message"
	"corriere/core/policy"
	"corriere/core/reply"
	"corriere/core/testlib"
)

// readRepoFile returns a shipped policy file, such as "scripts/classify.lua".
func readRepoFile(t testing.TB, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// replaceOnce replaces old by new in s, failing the test if old is absent.
func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestReloadRefusesBrokenPolicy(t *testing.T) {
	t.Parallel()
	classify := readRepoFile(t, "scripts/classify.lua")
	providers := readRepoFile(t, "rules/providers.lua")
	pools := readRepoFile(t, "rules/pools.lua")
	tests := []struct {
		name  string
		files map[string]string
		file  string // the refusal names this file (suffix)
		line  int    // and this line (0: no line)
		msg   string // and says this
	}{
		{"syntax error", map[string]string{"scripts/classify.lua": classify + "\nfunction broken(\n"},
			"scripts/classify.lua", strings.Count(classify, "\n") + 3, "syntax error"},
		{"runtime error at load", map[string]string{"rules/providers.lua": "local n = nil + 1\n" + providers},
			"rules/providers.lua", 1, "cannot perform add operation"},
		{"data module error reached through require", map[string]string{"rules/pools.lua": "return { pools = nil .. 'x' }\n"},
			"rules/pools.lua", 1, "concat"},
		{"hook fails its smoke call", map[string]string{"scripts/route.lua": "function route(msg, rcpt)\n  return { pool = 'p', source = 'not-an-ip' }\nend\n"},
			"scripts/route.lua", 1, `source "not-an-ip"; want an IP address (smoke call of route)`},
		{"typo in provider limits", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "connections = 2,", "conections = 2,")},
			"scripts/shape.lua", 17, "unknown field conections"},
		{"critical reserve of the whole volume", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", "per_hour = 2000, critical_reserve = 1,")},
			"scripts/shape.lua", 17, "critical_reserve = 1; want a share below 1"},
		{"zero suspension", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", `per_hour = 2000, suspend_delay = "0s",`)},
			"scripts/shape.lua", 17, `suspend_delay = 0s; want a duration above zero ("10m" by default)`},
		{"recovery interval not a duration", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", `per_hour = 2000, recovery_interval = "soon",`)},
			"scripts/shape.lua", 17, `recovery_interval: `},
		{"recovery step that never recovers", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", "per_hour = 2000, recovery_step = 1,")},
			"scripts/shape.lua", 17, "recovery_step = 1; want a factor above 1"},
		{"recovery step not a number", map[string]string{"rules/providers.lua": replaceOnce(t, providers, "per_hour = 2000,", `per_hour = 2000, recovery_step = "fast",`)},
			"scripts/shape.lua", 17, "recovery_step = string; want a number"},
		{"hook raises on its smoke call", map[string]string{"scripts/on_bounce.lua": "function on_bounce(r)\n  return nil + r\nend\n"},
			"scripts/on_bounce.lua", 2, "cannot perform add operation"},
		{"no hook defined (typo)", map[string]string{"scripts/extra.lua": "function clasify(msg) end\n"},
			"scripts/extra.lua", 0, "defines none of the hooks"},
		{"hook defined twice", map[string]string{"scripts/extra.lua": "\nfunction classify(msg) end\n"},
			"scripts/extra.lua", 2, "already defined in"},
		{"tenant overrides shape", map[string]string{"scripts/tenants/example.lua": "function shape(p, s) return {} end\n"},
			"scripts/tenants/example.lua", 1, "cannot be overridden per tenant"},
		{"plain-text password", map[string]string{"rules/tenants/acme.lua": "return { password = 'secret' }\n"},
			"rules/tenants/acme.lua", 0, "plain-text password"},
		{"password hash not bcrypt", map[string]string{"rules/tenants/acme.lua": "return { password_hash = 'secret' }\n"},
			"rules/tenants/acme.lua", 0, "not a bcrypt hash"},
		{"tenant name mismatch", map[string]string{"rules/tenants/acme.lua": "return { name = 'other' }\n"},
			"rules/tenants/acme.lua", 0, "named after tenant"},
		{"re-enveloping without a bounce domain", map[string]string{"rules/tenants/acme.lua": "return { reenvelope = true }\n"},
			"rules/tenants/acme.lua", 0, "needs bounce_domain"},
		{"bounce domain that is an address", map[string]string{"rules/tenants/acme.lua": "return { reenvelope = true, bounce_domain = 'bounces@x.example' }\n"},
			"rules/tenants/acme.lua", 0, "is not a domain name"},
		{"return-path domain that is an address", map[string]string{"rules/tenants/acme.lua": "return { return_path_domain = 'bounces@shop.example' }\n"},
			"rules/tenants/acme.lua", 0, `return_path_domain = "bounces@shop.example" is not a domain name`},
		{"return-path domain not a string", map[string]string{"rules/tenants/acme.lua": "return { return_path_domain = true }\n"},
			"rules/tenants/acme.lua", 0, "return_path_domain must be a domain name"},
		{"bad IP in pools", map[string]string{"rules/pools.lua": replaceOnce(t, pools, "bulk = { ips = {} },", `bulk = { ips = { { ip = "192.0.2.300" } } },`)},
			"rules/pools.lua", 0, `pools.bulk.ips[1].ip = "192.0.2.300"`},
		{"class mapped to a missing pool", map[string]string{"rules/pools.lua": replaceOnce(t, pools, `newsletter = "bulk",`, `newsletter = "blk",`)},
			"rules/pools.lua", 0, "no such pool"},
		{"provider listed twice", map[string]string{"rules/providers.lua": replaceOnce(t, providers, `name = "virgilio"`, `name = "libero"`)},
			"rules/providers.lua", 0, `"libero" is listed twice`},
		{"rules file returns no table", map[string]string{"rules/extra.lua": "return 42\n", "scripts/extra.lua": "local x = require 'rules.extra'\nfunction on_bounce(r) return { category = 'x' } end\n",
			"scripts/on_bounce.lua": ""},
			"rules/extra.lua", 0, "must return a table"},
		{"invalid tenant file name", map[string]string{"scripts/tenants/bad name.lua": "function classify(m) return defaults.classify(m) end\n"},
			"scripts/tenants/bad name.lua", 0, "not a valid tenant name"},
		{"unknown module", map[string]string{"scripts/extra.lua": "local json = require 'json'\nfunction on_bounce(r) return { category = 'x' } end\n",
			"scripts/on_bounce.lua": ""},
			"scripts/extra.lua", 1, `module "json" is not available`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each case has an engine and a policy of its own
			scripts, rules := policyDirs(t, nil)
			var events []event.Category
			var bus event.Bus
			bus.Subscribe(event.SinkFunc(func(ev *event.Event) { events = append(events, ev.Category) }))
			e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Events: &bus})
			var reloads []uint64
			e.OnReload(func(g uint64) { reloads = append(reloads, g) })
			root := filepath.Dir(scripts)
			saved := map[string]string{}
			for rel, content := range tt.files {
				if old, err := os.ReadFile(filepath.Join(root, rel)); err == nil {
					saved[rel] = string(old)
				} else {
					saved[rel] = ""
				}
				writePolicyFile(t, filepath.Join(root, rel), content)
			}

			err := e.Reload()
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("Reload = %v, want a *ScriptError", err)
			}
			if !strings.HasSuffix(se.File, tt.file) || se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Reload error = %q, want %s:%d and %q", se, tt.file, tt.line, tt.msg)
			}
			st := e.Status()
			if st.Generation != 1 || st.ReloadErrors != 1 || st.LastError != se.Error() || st.LastErrorAt.IsZero() {
				t.Errorf("Status = generation %d, %d reload errors, last error %q; want 1, 1, %q",
					st.Generation, st.ReloadErrors, st.LastError, se.Error())
			}
			// The current generation keeps serving.
			c, err := e.Classify(context.Background(), loadMessage(t, "transactional.eml", "example"))
			if err != nil || c.Class != message.Transactional {
				t.Errorf("Classify after a refused reload = %+v, %v", c, err)
			}

			// Undo the change: the next reload is accepted.
			for rel, content := range saved {
				path := filepath.Join(root, rel)
				if content == "" {
					if _, err := os.Stat(path); err == nil {
						writePolicyFile(t, path, "")
					}
					continue
				}
				writePolicyFile(t, path, content)
			}
			if err := e.Reload(); err != nil {
				t.Fatalf("Reload after the fix: %v", err)
			}
			if g := e.Status().Generation; g != 2 {
				t.Errorf("generation after the fix = %d, want 2", g)
			}
			if want := []event.Category{event.PolicyLoaded, event.PolicyRefused, event.PolicyLoaded}; !slices.Equal(events, want) {
				t.Errorf("policy events = %v, want %v", events, want)
			}
			// Only the reload that was accepted is notified.
			if want := []uint64{2}; !slices.Equal(reloads, want) {
				t.Errorf("OnReload calls = %v, want %v", reloads, want)
			}
		})
	}
}

func TestNewRefusesBrokenPolicy(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{"scripts/route.lua": "function route(msg, rcpt\n"})
	err := Check(scripts, rules)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.HasSuffix(se.File, "scripts/route.lua") || se.Line == 0 {
		t.Fatalf("Check = %v, want a syntax error in scripts/route.lua with a line", err)
	}
	if err := Check(filepath.Join(t.TempDir(), "missing"), rules); err == nil {
		t.Error("Check with a missing scripts directory succeeded")
	}
	if err := Check(filepath.Join(repoRoot, "scripts"), filepath.Join(repoRoot, "rules")); err != nil {
		t.Errorf("Check of the shipped policy: %v", err)
	}
}

func TestHooksWithoutScriptsUseTheGoPolicy(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, nil)
	for _, f := range []string{"classify", "rewrite", "route", "shape", "on_response"} {
		writePolicyFile(t, filepath.Join(scripts, f+".lua"), "")
	}
	writePolicyFile(t, filepath.Join(scripts, "tenants", "example.lua"), "")
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Sources: threeSources[:1]})
	ctx := context.Background()
	m := loadMessage(t, "newsletter.eml", "example")
	c, err := e.Classify(ctx, m)
	if err != nil || c.Class != message.Newsletter {
		t.Errorf("Classify = %+v, %v", c, err)
	}
	rt, err := e.Route(ctx, delivery(m, "a@gmail.com", "gmail"))
	if err != nil || rt.Source != threeSources[0].IP {
		t.Errorf("Route = %+v, %v", rt, err)
	}
	l, err := e.Shape(ctx, "gmail", "")
	if err != nil || l != policy.DefaultLimits {
		t.Errorf("Shape = %+v, %v", l, err)
	}
	if st := e.Status(); st.Hooks[hClassify].Defined != "built-in" || !strings.HasSuffix(st.Hooks[hOnBounce].Defined, "on_bounce.lua:16") {
		t.Errorf("Status hooks = %+v", st.Hooks)
	}
}

func TestTenantOverrideAndFallback(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{
		"rules/tenants/clinic.lua": testdataTenant(t, "clinic"),
		// Overrides route only; classify and everything else fall back.
		"scripts/tenants/clinic.lua": `-- Prescriptions leave from the clinic's own IP.
function route(msg, rcpt)
  local r = defaults.route(msg, rcpt)
  if msg:class() == "critical" then
    return { pool = "clinic", source = "203.0.113.5", helo = "mta.clinic.example" }
  end
  return r
end
`,
	})
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Sources: threeSources})
	ctx := context.Background()

	m := loadMessage(t, "prescription.eml", "clinic")
	c, err := e.Classify(ctx, m) // default classify with clinic's rules
	if err != nil || c.Class != message.Critical || c.Campaign != "prescriptions" {
		t.Fatalf("Classify = %+v, %v", c, err)
	}
	m.Class, m.Campaign = c.Class, c.Campaign
	rt, err := e.Route(ctx, delivery(m, "paziente@virgilio.it", "virgilio"))
	if err != nil || rt.Source != "203.0.113.5" || rt.Pool != "clinic" {
		t.Errorf("clinic's critical route = %+v, %v", rt, err)
	}
	m.Class = message.Transactional
	if rt, err := e.Route(ctx, delivery(m, "paziente@virgilio.it", "virgilio")); err != nil || rt.Pool != "transactional" {
		t.Errorf("clinic's transactional route (the default through defaults.route) = %+v, %v", rt, err)
	}

	// Another tenant's critical mail takes the default route.
	other := loadMessage(t, "alert.eml", "example")
	other.Class = message.Critical
	if rt, err := e.Route(ctx, delivery(other, "ops@aruba.it", "aruba")); err != nil || rt.Pool != "transactional" {
		t.Errorf("example's critical route = %+v, %v", rt, err)
	}

	// Example overrides classify only: its rewrite is the default one.
	ex := loadMessage(t, "order-confirmation.eml", "example")
	c, err = e.Classify(ctx, ex)
	if err != nil || c.Class != message.Transactional {
		t.Errorf("example's classify override = %+v, %v", c, err)
	}
	ex.Class = c.Class
	if err := e.Rewrite(ctx, ex); err != nil || ex.Header.Get("Feedback-ID") != "example:transactional:corriere" {
		t.Errorf("example's rewrite (default) = %v, Feedback-ID %q", err, ex.Header.Get("Feedback-ID"))
	}
	st := e.Status()
	if got := st.Hooks[hRoute].Overrides; fmt.Sprint(got) != "[clinic]" {
		t.Errorf("route overrides = %v, want [clinic]", got)
	}
	if got := st.Hooks[hClassify].Overrides; fmt.Sprint(got) != "[example]" {
		t.Errorf("classify overrides = %v, want [example]", got)
	}
}

func TestWatchReloadsOnSave(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, nil)
	if err := os.RemoveAll(filepath.Join(scripts, "tenants")); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules})
	w, dirs, err := e.startWatch()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.watchLoop(ctx, w, dirs)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	classify := readRepoFile(t, "scripts/classify.lua")
	path := filepath.Join(scripts, "classify.lua")
	priority := func() int {
		c, err := e.Classify(context.Background(), loadMessage(t, "transactional.eml", "example"))
		if err != nil {
			t.Fatal(err)
		}
		return c.Priority
	}
	withPriority := func(n int) string {
		return replaceOnce(t, classify, "transactional = 50,", fmt.Sprintf("transactional = %d,", n))
	}

	// An editor that writes in place.
	writePolicyFile(t, path, withPriority(60))
	testlib.WaitFor(t, "in-place save current", func() bool { return priority() == 60 })

	// An editor that writes a temporary file and renames it over the original.
	tmp := path + ".tmp"
	writePolicyFile(t, tmp, withPriority(70))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	testlib.WaitFor(t, "rename-over save current", func() bool { return priority() == 70 })
	gen := e.Status().Generation

	// A broken save is refused and never becomes current.
	writePolicyFile(t, path, withPriority(80)+"\nlocal = 1\n")
	testlib.WaitFor(t, "broken save refused", func() bool { return e.Status().ReloadErrors == 1 })
	if st := e.Status(); st.Generation != gen || !strings.Contains(st.LastError, "classify.lua:") || priority() != 70 {
		t.Errorf("after a broken save: generation %d (want %d), last error %q, priority %d (want 70)",
			st.Generation, gen, st.LastError, priority())
	}

	// A directory created after the watch started is watched too.
	writePolicyFile(t, filepath.Join(scripts, "tenants", "example.lua"), readRepoFile(t, "scripts/tenants/example.lua"))
	writePolicyFile(t, path, withPriority(70))
	testlib.WaitFor(t, "new tenants directory loaded", func() bool {
		return fmt.Sprint(e.Status().Hooks[hClassify].Overrides) == "[example]"
	})
}

func TestConcurrentCallsDuringReloads(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, nil)
	// This test is about consistency while generations change under
	// concurrent callers; budgets have their own tests, and newEngine's
	// budget is generous.
	e := newEngine(t, Options{ScriptsDir: scripts, RulesDir: rules, Sources: threeSources, Counters: &memCounters{}})
	classify := readRepoFile(t, "scripts/classify.lua")
	path := filepath.Join(scripts, "classify.lua")

	var stop atomic.Bool
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for !stop.Load() {
				m := loadMessage(t, "newsletter.eml", "example")
				c, err := e.Classify(ctx, m)
				if err == nil {
					m.Class, m.Campaign = c.Class, c.Campaign
					err = e.Rewrite(ctx, m)
				}
				if err == nil {
					_, err = e.Route(ctx, delivery(m, fmt.Sprintf("r%d@libero.it", i), e.Provider("smtp-in.libero.it")))
				}
				if err == nil {
					_, err = e.Shape(ctx, "libero", threeSources[i%3].IP)
				}
				if err == nil {
					_, err = e.OnResponse(ctx, &policy.Attempt{Stage: policy.StageRcpt, Reply: reply.New(451, "4.7.1", "try again later"), Provider: "libero", Tenant: "example"})
				}
				if err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		}()
	}
	// The callers complete message paths between any two reloads: ten
	// swaps under eight callers show what fifty did, in a fifth of the
	// time.
	const reloads = 10
	for i := range reloads {
		before := calls.Load()
		testlib.WaitFor(t, "a message path on the current generation", func() bool {
			return calls.Load() > before || len(errs) > 0
		})
		writePolicyFile(t, path, replaceOnce(t, classify, "transactional = 50,", fmt.Sprintf("transactional = %d,", 50+i%2)))
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := e.Status(); st.Generation != reloads+1 {
		t.Errorf("generation = %d, want %d", st.Generation, reloads+1)
	}
	t.Logf("%d message paths during %d reloads", calls.Load(), reloads)
}
