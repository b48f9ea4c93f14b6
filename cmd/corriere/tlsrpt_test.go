package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/tlsrpt"
)

// TestTLSRPTPrintsADaysReports records a day with failures in a spool's
// tls-rpt.json, as a node does, and reads the report back with the
// command.
func TestTLSRPTPrintsADaysReports(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	rec, err := tlsrpt.NewRecorder(tlsrpt.Options{Path: filepath.Join(spool, "tls-rpt.json"), Submitter: "mta.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for i := range 4 {
		res := tlsrpt.Result{At: day, Domain: "secure.example", PolicyType: tlsrpt.PolicySTS, MXHost: "mx.secure.example",
			Policy: []string{"version: STSv1", "mode: enforce", "mx: mx.secure.example", "max_age: 86400"}, MXPatterns: []string{"mx.secure.example"}}
		if i > 0 {
			res.Failure = tlsrpt.ResultStartTLSNotSupported
		}
		rec.Record(res)
	}
	if err := rec.Save(); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := runTLSRPT(context.Background(), []string{"--spool", spool, "--day", "2026-12-02", "--hostname", "mta.example.net"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep tlsrpt.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a report: %v\n%s", err, out.String())
	}
	p := rep.Policies[0]
	if p.Policy.Domain != "secure.example" || p.Summary.Successful != 1 || p.Summary.Failed != 3 ||
		p.FailureDetails[0].ResultType != tlsrpt.ResultStartTLSNotSupported {
		t.Errorf("report %s", out.String())
	}

	errOut.Reset()
	if code := runTLSRPT(context.Background(), []string{"--spool", spool, "--day", "2026-12-01"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no TLS sessions") {
		t.Errorf("a day without sessions: exit %d, %q", code, errOut.String())
	}
}
