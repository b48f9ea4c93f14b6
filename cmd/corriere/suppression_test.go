package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"corriere/core/admin"
	"corriere/core/luart"
	"corriere/core/queue"
	"corriere/core/spool"
	"corriere/core/suppress"
)

// suppression runs the subcommand in-process.
func suppression(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runSuppression(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSuppressionDirect(t *testing.T) {
	dir := t.TempDir()
	sp := []string{"--spool", dir}
	if code, _, errs := suppression(t, "", append([]string{"list"}, sp...)...); code != 1 || !strings.Contains(errs, "no spool in") {
		t.Errorf("list without a spool: %d %s", code, errs)
	}
	code, out, errs := suppression(t, "", append([]string{"add", "Mario@Example.IT", "--tenant", "acme", "--reason", "asked to stop"}, sp...)...)
	if code != 0 || out != "suppressed mario@example.it for tenant acme\n" {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	csv := "tenant,address,category,reason,source,added\n" +
		"acme,gone@example.org,userunknown,550 5.1.1 no such user,bounce,2026-11-30T14:05:00Z\n" +
		",relay@example.org,,,,2026-11-29T10:00:00Z\n"
	if code, out, errs := suppression(t, csv, append([]string{"import", "-"}, sp...)...); code != 0 || out != "imported 2 entries\n" {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	code, _, errs = suppression(t, "tenant,address\nacme,ok@example.org\nacme,broken\n", append([]string{"import", "-"}, sp...)...)
	if code != 1 || !strings.Contains(errs, "line 3") || !strings.Contains(errs, "nothing imported") {
		t.Errorf("bad import: %d %q", code, errs)
	}

	code, out, _ = suppression(t, "", append([]string{"list", "--tenant", "acme"}, sp...)...)
	if code != 0 || !strings.Contains(out, "gone@example.org") || !strings.Contains(out, "2026-11-30 14:05") ||
		!strings.Contains(out, "mario@example.it") || strings.Contains(out, "relay@") || !strings.HasSuffix(out, "2 suppressed\n") {
		t.Errorf("list --tenant acme:\n%s", out)
	}
	code, out, _ = suppression(t, "", append([]string{"list"}, sp...)...)
	if code != 0 || !strings.Contains(out, "(relay)") || !strings.HasSuffix(out, "3 suppressed\n") {
		t.Errorf("list:\n%s", out)
	}

	file := filepath.Join(t.TempDir(), "out.csv")
	if code, _, errs := suppression(t, "", append([]string{"export", "--tenant", "", file}, sp...)...); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	raw, _ := os.ReadFile(file)
	if string(raw) != "tenant,address,category,reason,source,added\n,relay@example.org,,,import,2026-11-29T10:00:00Z\n" {
		t.Errorf("export of relayed mail:\n%s", raw)
	}

	code, out, errs = suppression(t, "", append([]string{"remove", "--tenant", "acme", "gone@example.org", "never@example.org"}, sp...)...)
	if code != 1 || !strings.Contains(out, "removed gone@example.org for tenant acme (was userunknown since 2026-11-30)") ||
		!strings.Contains(errs, "never@example.org is not suppressed for tenant acme") {
		t.Errorf("remove: %d %q %q", code, out, errs)
	}

	if code, _, errs := suppression(t, "", append([]string{"add", "--reason", "x", "a@example.org"}, sp...)...); code != 2 || !strings.Contains(errs, "--tenant") {
		t.Errorf("add without --tenant: %d %q", code, errs)
	}

	// A spool held by a node whose admin API is off: a clear refusal.
	held, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if code, _, errs := suppression(t, "", append([]string{"list"}, sp...)...); code != 1 || !strings.Contains(errs, "in use by a running node") {
		t.Errorf("list of a held spool: %d %q", code, errs)
	}
}

type stubPolicy struct{}

func (stubPolicy) Status() luart.Status { return luart.Status{} }
func (stubPolicy) Reload() error        { return nil }

type stubQueue struct{}

func (stubQueue) Status() queue.Status { return queue.Status{} }

func TestSuppressionThroughAdminAPI(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "queue")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	list := suppress.New(sp, nil)
	srv, err := admin.Start(admin.Options{Addr: "127.0.0.1:0", StateDir: dir, Policy: stubPolicy{}, Queue: stubQueue{},
		Handlers: suppress.AdminHandlers(list)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })

	// The spool is held by this process: every command below can only
	// have gone through the API.
	if code, out, errs := suppression(t, "", "add", "--spool", dir, "--tenant", "acme", "--reason", "ticket 4711", "a@example.org"); code != 0 {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	if _, ok, _ := list.Lookup("acme", "a@example.org"); !ok {
		t.Error("add through the API did not reach the list")
	}
	if code, out, errs := suppression(t, "tenant,address\nbeta,b@example.org\n", "import", "--spool", dir, "-"); code != 0 || out != "imported 1 entries\n" {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	code, out, _ := suppression(t, "", "list", "--spool", dir, "--csv")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "acme,a@example.org,manual,ticket 4711,manual,") {
		t.Errorf("list --csv:\n%s", out)
	}
	code, out, _ = suppression(t, "", "export", "--spool", dir, "--admin", srv.Addr(), "--tenant", "beta")
	if code != 0 || !strings.Contains(out, "beta,b@example.org,,,import,") || strings.Contains(out, "acme") {
		t.Errorf("export --tenant beta:\n%s", out)
	}
	if code, _, errs := suppression(t, "", "remove", "--spool", dir, "--tenant", "acme", "a@example.org", "a@example.org"); code != 1 || !strings.Contains(errs, "not suppressed") {
		t.Errorf("remove twice: %d %q", code, errs)
	}
	if _, ok, _ := list.Lookup("acme", "a@example.org"); ok {
		t.Error("remove through the API did not reach the list")
	}
}

func TestSuppressionHelp(t *testing.T) {
	for _, sub := range []string{"list", "add", "remove", "import", "export"} {
		var out, errb bytes.Buffer
		if code := runSuppression(context.Background(), []string{sub, "--help"}, nil, &out, &errb); code != 0 ||
			!strings.Contains(errb.String(), "Usage: corriere suppression "+sub) || !strings.Contains(errb.String(), "--spool") {
			t.Errorf("%s --help: %d\n%s", sub, code, errb.String())
		}
	}
}
