package tenant

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestMaySend(t *testing.T) {
	acme := &Tenant{Name: "acme", SenderDomains: []string{"acme.example", "Shop.Example"}}
	platform := &Tenant{Name: "platform"}
	for _, tc := range []struct {
		tenant *Tenant
		domain string
		want   bool
	}{
		{acme, "acme.example", true},
		{acme, "ACME.Example", true},
		{acme, "news.acme.example", true},
		{acme, "a.b.acme.example", true},
		{acme, "shop.example", true},
		{acme, "eu.shop.example", true},
		{acme, "evilacme.example", false},
		{acme, "acme.example.evil", false},
		{acme, "example", false},
		{acme, "other.example", false},
		{acme, "", false},
		// No sender_domains: a platform that re-envelopes every message.
		{platform, "anything.example", true},
		{platform, "", true},
	} {
		if got := tc.tenant.MaySend(tc.domain); got != tc.want {
			t.Errorf("%s.MaySend(%q) = %v, want %v", tc.tenant.Name, tc.domain, got, tc.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2") || strings.Contains(h, "secret") {
		t.Fatalf("HashPassword = %q; want a bcrypt hash without the password", h)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if err := (&Tenant{Name: "acme", PasswordHash: h}).CheckPassword("secret"); err != nil {
		t.Errorf("CheckPassword with the new hash = %v", err)
	}
	if _, err := HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Error("HashPassword accepted a password longer than bcrypt's 72 bytes")
	}
}

func TestCheckPassword(t *testing.T) {
	// A hash at the lowest cost keeps the table fast; CheckPassword reads
	// the cost from the hash.
	raw, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(raw)
	for _, tc := range []struct {
		name     string
		hash     string
		password string
		// wantErr is nil for a match, ErrBadPassword for a mismatch, and
		// errOther for a hash that cannot be checked at all.
		wantErr error
	}{
		{"right password", h, "secret", nil},
		{"wrong password", h, "Secret", ErrBadPassword},
		{"empty password", h, "", ErrBadPassword},
		{"no hash", "", "secret", errOther},
		{"not bcrypt", "secret", "secret", errOther},
		{"truncated bcrypt", h[:20], "secret", errOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Tenant{Name: "acme", PasswordHash: tc.hash}).CheckPassword(tc.password)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("CheckPassword = %v; want a match", err)
			case tc.wantErr == ErrBadPassword && !errors.Is(err, ErrBadPassword):
				t.Errorf("CheckPassword = %v; want ErrBadPassword", err)
			case tc.wantErr == errOther && (err == nil || errors.Is(err, ErrBadPassword) || !strings.Contains(err.Error(), "acme")):
				t.Errorf("CheckPassword = %v; want an error naming the tenant, not ErrBadPassword", err)
			}
		})
	}
}

// errOther stands for any error other than ErrBadPassword in the table of
// TestCheckPassword.
var errOther = errors.New("an unusable hash")

func TestStaticLookup(t *testing.T) {
	acme := &Tenant{Name: "acme"}
	var dir Directory = Static{"acme": acme}
	for _, tc := range []struct {
		name string
		want *Tenant
	}{
		{"acme", acme},
		{"ACME", nil},
		{"other", nil},
		{"", nil},
	} {
		got, ok := dir.Lookup(tc.name)
		if got != tc.want || ok != (tc.want != nil) {
			t.Errorf("Lookup(%q) = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}
