package tenant

import (
	"strings"
	"testing"
)

// TestAPIKeys: a new key names its tenant, matches its own hash only, and
// keys of other forms name no tenant.
func TestAPIKeys(t *testing.T) {
	key, hash, err := NewAPIKey("acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAPIKeyHash(hash); err != nil {
		t.Fatalf("CheckAPIKeyHash(%q): %v", hash, err)
	}
	if name, ok := APIKeyTenant(key); !ok || name != "acme.example" {
		t.Errorf("APIKeyTenant(%q) = %q, %v", key, name, ok)
	}
	other, otherHash, _ := NewAPIKey("acme.example")
	tn := &Tenant{Name: "acme.example", APIKeyHashes: []string{otherHash, hash}}
	if !tn.CheckAPIKey(key) || !tn.CheckAPIKey(other) {
		t.Error("a tenant's own keys are refused")
	}
	for _, bad := range []string{"", key[:len(key)-1], key + "0", strings.ToUpper(key), "acme.example." + strings.Repeat("0", 64)} {
		if tn.CheckAPIKey(bad) {
			t.Errorf("CheckAPIKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "nodot", "." + strings.Repeat("0", 64), "acme.short"} {
		if _, ok := APIKeyTenant(bad); ok {
			t.Errorf("APIKeyTenant(%q) names a tenant", bad)
		}
	}
	if _, _, err := NewAPIKey("two words"); err == nil {
		t.Error("NewAPIKey accepted a name with a space")
	}
}
