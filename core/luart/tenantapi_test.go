package luart

import (
	"strings"
	"testing"

	"corriere/core/tenant"
)

// TestTenantAPIKeysAndWebhooks: api_keys and webhooks are read from the
// tenant file, and each mistake refuses the file with a message naming
// the field.
func TestTenantAPIKeysAndWebhooks(t *testing.T) {
	t.Parallel()
	key, hash, err := tenant.NewAPIKey("acme")
	if err != nil {
		t.Fatal(err)
	}
	hook := `{ url = "https://hooks.example/c", secret = "0123456789abcdef", events = { "delivered", "bounced" } }`
	tests := []struct {
		name, file string
		wantErr    string
	}{
		{"both", "return { api_keys = { '" + hash + "' }, webhooks = { " + hook + " } }\n", ""},
		{"none", "return {}\n", ""},
		{"plain key", "return { api_keys = { '" + key + "' } }\n", `api_keys[1]: an API key hash starts with "sha256:"`},
		{"short hash", "return { api_keys = { 'sha256:00' } }\n", "api_keys[1]: an API key hash is"},
		{"keys not a list", "return { api_keys = 'x' }\n", "api_keys must be a list"},
		{"webhooks not a list", "return { webhooks = 'x' }\n", "webhooks must be a list"},
		{"webhook not a table", "return { webhooks = { 'x' } }\n", "webhooks[1] must be a table"},
		{"bad url", "return { webhooks = { { url = 'ftp://x', secret = '0123456789abcdef' } } }\n", `webhooks[1]: url = "ftp://x" is not an http or https URL`},
		{"short secret", "return { webhooks = { { url = 'https://x', secret = 'short' } } }\n", "webhooks[1]: secret must be at least 16 characters"},
		{"unknown event", "return { webhooks = { { url = 'https://x', secret = '0123456789abcdef', events = { 'delivred' } } } }\n", `webhooks[1]: events: unknown event "delivred"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scripts, rules := policyDirs(t, map[string]string{"rules/tenants/acme.lua": tt.file})
			e, err := New(Options{ScriptsDir: scripts, RulesDir: rules, CallTimeout: testCallTimeout})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "acme.lua") {
					t.Fatalf("New = %v, want an error of acme.lua containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			acme, _ := e.Lookup("acme")
			if tt.name == "both" {
				if !acme.CheckAPIKey(key) || acme.CheckAPIKey(key+"0") || len(acme.Webhooks) != 1 || !acme.Webhooks[0].Wants("bounced") || acme.Webhooks[0].Wants("deferred") {
					t.Errorf("acme = %+v", acme)
				}
			}
		})
	}
}
