package luart

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"corriere/core/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/luart/golden")

func TestDryRunGolden(t *testing.T) {
	t.Parallel()
	scripts, rules := policyDirs(t, map[string]string{"rules/tenants/clinic.lua": testdataTenant(t, "clinic")})
	e := newEngine(t, Options{
		ScriptsDir: scripts, RulesDir: rules,
		Sources: []policy.Source{
			{IP: "192.0.2.10", Helo: "out10.mta.example.net"},
			{IP: "192.0.2.11", Helo: "out11.mta.example.net"},
		},
		Now: func() time.Time { return time.Date(2025, 6, 3, 12, 0, 0, 0, time.UTC) },
	})
	tests := []struct {
		golden string
		in     DryRunInput
	}{
		{"newsletter-libero", DryRunInput{Name: "newsletter.eml", Recipient: "mario.rossi@libero.it", Tenant: "example",
			MXHost: "smtp-in.libero.it", Reply: "421 4.7.0 Too many connections from your IP", Stage: policy.StageConnect}},
		{"transactional-gmail", DryRunInput{Name: "transactional.eml", Recipient: "giulia.bianchi@gmail.com", Tenant: "example",
			MXHost: "gmail-smtp-in.l.google.com", Reply: "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address."}},
		{"personal-outlook", DryRunInput{Name: "personal.eml", Recipient: "anna.neri@outlook.com",
			MXHost: "outlook-com.olc.protection.outlook.com", Reply: "550 5.7.1 Unfortunately, messages from [192.0.2.11] weren't sent. (S3150)"}},
		{"prescription-reenveloped", DryRunInput{Name: "prescription.eml", Recipient: "paziente@virgilio.it", Tenant: "clinic",
			MXHost: "mx.virgilio.it", Reply: "550 5.1.1 <paziente@virgilio.it>: Recipient address rejected: User unknown"}},
		{"order-confirmation-override", DryRunInput{Name: "order-confirmation.eml", Recipient: "marco.blu@icloud.com", Tenant: "example",
			MXHost: "mx01.mail.icloud.com"}},
		{"otp-no-mx", DryRunInput{Name: "otp-encoded.eml", Recipient: "paolo.gialli@yahoo.it", Tenant: "example",
			Reply: "451 4.7.1 Greylisting in action, please come back later"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(testdataDir, "messages", tt.in.Name))
			if err != nil {
				t.Fatal(err)
			}
			tt.in.Message = raw
			d, err := e.DryRun(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := d.WriteText(&got); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdataDir, "golden", tt.golden+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("output differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got.String(), want)
			}
		})
	}
}

func TestDryRunErrors(t *testing.T) {
	t.Parallel()
	e := defaultEngine(t, Options{})
	raw, err := os.ReadFile(filepath.Join(testdataDir, "messages", "transactional.eml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   DryRunInput
		want string
	}{
		{"no recipient", DryRunInput{Message: raw}, "recipient"},
		{"bad reply", DryRunInput{Message: raw, Recipient: "a@gmail.com", Reply: "hello"}, "--reply"},
	}
	for _, tt := range tests {
		if _, err := e.DryRun(context.Background(), tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: DryRun error = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}
