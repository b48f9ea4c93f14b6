package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoOptions points the demo at the repository's world and policy.
func repoOptions(t *testing.T) Options {
	t.Helper()
	root := filepath.Join("..", "..")
	return Options{
		WorldPath:  filepath.Join(root, "testdata", "sim", "world.json"),
		ScriptsDir: filepath.Join(root, "scripts"),
		RulesDir:   filepath.Join(root, "rules"),
		KeepDir:    t.TempDir(),
		// The demo checks whether everything has settled at every
		// interval: a short one ends the run soon after it has.
		Interval: 250 * time.Millisecond,
	}
}

// promptWorld writes a copy of the repository's world whose providers send
// their late bounces and complaint reports after lateDelay (such as "1s")
// instead of seconds later, and returns its path. The demo waits for that
// late mail before it reports, so the delay sets how long a settled run
// lasts.
func promptWorld(t *testing.T, world, lateDelay string) string {
	t.Helper()
	data, err := os.ReadFile(world)
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]any
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatalf("%s: %v", world, err)
	}
	providers, _ := w["providers"].([]any)
	changed := 0
	for _, p := range providers {
		for _, late := range []string{"async_bounce", "complaints"} {
			if m, ok := p.(map[string]any)[late].(map[string]any); ok {
				m["delay"] = lateDelay
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatalf("%s: no provider sends late mail any more", world)
	}
	out, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "world.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDemoAccountsForEveryMessage runs the demo with a small workload to
// the end and checks the accounting: every acknowledged recipient is
// delivered (and seen by its simulated provider), bounced or expired with
// a DSN, or still queued with a reason.
func TestDemoAccountsForEveryMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole node against the simulator")
	}
	t.Parallel()
	opts := repoOptions(t)
	opts.Messages = 300
	// Submission is spread over a fifth of Duration (2s); the run settles
	// in about 6s, well within it. A MaxAge of 4s lets a greylisted
	// recipient through on its retry after 2s and expires one that is
	// still deferred then, instead of retrying it for 25s: every outcome
	// still happens, sooner.
	opts.Duration = 10 * time.Second
	opts.MaxAge = 4 * time.Second
	opts.WorldPath = promptWorld(t, opts.WorldPath, "1s")
	var out bytes.Buffer
	opts.Out = &out
	r, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("demo output:\n%s", out.String())
	if !r.OK() {
		t.Fatalf("unaccounted recipients: %v", r.Unaccounted)
	}
	if r.Acknowledged != r.Recipients || r.Refused != 0 || r.NotSubmitted != 0 {
		t.Errorf("acknowledged %d of %d recipients (refused %d, not submitted %d)",
			r.Acknowledged, r.Recipients, r.Refused, r.NotSubmitted)
	}
	placed := r.Delivered + r.Bounced + r.Expired + r.Suppressed + r.Queued
	if placed != r.Acknowledged {
		t.Errorf("delivered %d + bounced %d + expired %d + suppressed %d + queued %d = %d, want %d acknowledged",
			r.Delivered, r.Bounced, r.Expired, r.Suppressed, r.Queued, placed, r.Acknowledged)
	}
	if r.ConfirmedBySim != r.Delivered {
		t.Errorf("simulated providers recorded %d of %d delivered recipients", r.ConfirmedBySim, r.Delivered)
	}
	// The workload always reaches unknown users and null-MX domains, and
	// greylisting providers: each outcome must have happened.
	if r.Delivered == 0 || r.Bounced == 0 || r.GreylistedThenDelivered == 0 {
		t.Errorf("delivered %d, bounced %d, greylisted then delivered %d: want each > 0",
			r.Delivered, r.Bounced, r.GreylistedThenDelivered)
	}
	// A doctor's patient is bounced later by their provider: the bounce
	// comes back through the bounce listener to the re-enveloped address.
	if r.LateBounced == 0 {
		t.Error("no late bounce of re-enveloped mail went through the bounce listener")
	}
	// Complaint reports come to the feedback-loop address, and every one
	// is attributed, whether or not its tenant re-envelopes.
	if r.FBLComplaints == 0 || r.FBLUnattributed != 0 {
		t.Errorf("complaint reports at the bounce listener: %d attributed, %d unattributed; want some, all attributed", r.FBLComplaints, r.FBLUnattributed)
	}
	if r.DSNs == 0 || r.DSNsDelivered != r.DSNs {
		t.Errorf("DSNs queued %d, delivered %d: want all of at least one", r.DSNs, r.DSNsDelivered)
	}
	// The attacked hospital's MTA-STS policy holds its mail back: nothing
	// to a domain with a policy reaches its MX in clear.
	if r.ClearUnderPolicy != 0 {
		t.Errorf("%d recipients of MTA-STS or DANE domains delivered in clear", r.ClearUnderPolicy)
	}
	for _, want := range []string{"Accounting OK", "Final state per provider and class", "Event log:",
		"ospedale-attaccato.it", "TLS-RPT for ospedale-attaccato.it: 0 sessions succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDemoCutShortReportsQueued ends the demo before the retries are over:
// what the spool still holds is reported with its reason, and nothing is
// unaccounted.
func TestDemoCutShortReportsQueued(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole node against the simulator")
	}
	t.Parallel()
	opts := repoOptions(t)
	opts.Messages = 100
	// Greylisted recipients are retried after 2s and more: at 3s some still wait.
	opts.Duration = 3 * time.Second
	r, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !r.OK() {
		t.Fatalf("unaccounted recipients: %v", r.Unaccounted)
	}
	if r.Queued == 0 {
		t.Fatalf("nothing left queued after %s (ending %q); greylisted recipients should still wait", opts.Duration, r.Ending)
	}
	reasons := 0
	for reason, n := range r.QueuedReasons {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("%d queued recipients without a reason", n)
		}
		reasons += n
	}
	if reasons != r.Queued {
		t.Errorf("reasons cover %d of %d queued recipients", reasons, r.Queued)
	}
}
