package luart

import (
	"strings"
	"testing"
)

func TestTenantSenderSwitches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file           string
		nullSender, literals bool
		wantErr              string
	}{
		{"default", "return { sender_domains = { 'acme.example' } }\n", false, false, ""},
		{"both allowed", "return { null_sender = true, address_literals = true }\n", true, true, ""},
		{"explicitly refused", "return { null_sender = false, address_literals = false }\n", false, false, ""},
		{"null_sender not a boolean", "return { null_sender = 'yes' }\n", false, false, "null_sender must be true or false"},
		{"address_literals not a boolean", "return { address_literals = 1 }\n", false, false, "address_literals must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scripts, rules := policyDirs(t, map[string]string{"rules/tenants/acme.lua": tt.file})
			e, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			acme, ok := e.Lookup("acme")
			if !ok || acme.NullSender != tt.nullSender || acme.AddressLiterals != tt.literals {
				t.Errorf("acme = %+v, %v; want NullSender %v, AddressLiterals %v", acme, ok, tt.nullSender, tt.literals)
			}
		})
	}
}
