// Package tenant describes the customers that submit mail through Corriere:
// their credentials, the sender domains they may use, and the per-tenant
// switches of the delivery engine.
//
// Tenants are policy data: they are defined in rules/tenants/*.lua and
// reloaded with the rest of the policy, so a new customer needs no restart.
// Passwords are stored only as bcrypt hashes.
package tenant

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Tenant is one customer account.
type Tenant struct {
	// Name is the tenant's identifier and SMTP AUTH user name.
	Name string
	// PasswordHash is a bcrypt hash ("$2a$…", "$2b$…", "$2y$…").
	PasswordHash string
	// SenderDomains are the domains the tenant may use in MAIL FROM and in
	// the From: field; empty means any domain (for platforms that
	// re-envelope every message).
	SenderDomains []string
	// Reenvelope makes the envelope sender a VERP address on the platform's
	// bounce domain for every message of the tenant.
	Reenvelope bool
	// SuppressionMode is "reject" (refuse suppressed recipients at RCPT,
	// the default) or "drop" (accept, record an event, do not deliver).
	SuppressionMode string
	// NullSender allows MAIL FROM:<> (the tenant sends its own bounces or
	// auto-replies). The default value is false: refused with 553 5.7.1.
	NullSender bool
	// ReturnPath holds the tenant's bounce domains (see ReturnPath).
	ReturnPath ReturnPath
	// AddressLiterals allows recipients at address literals
	// ("user@[192.0.2.1]"). The default value is false: refused with
	// 550 5.1.3.
	AddressLiterals bool
	// APIKeyHashes are the hashes of the tenant's keys for the HTTP
	// injection API (see apikey.go); empty means no API access.
	APIKeyHashes []string
	// Webhooks are the endpoints that receive the tenant's events (see
	// webhook.go).
	Webhooks []Webhook
}

// Directory finds tenants by name. Implementations must be safe for
// concurrent use and may change their contents at any time (policy reload).
type Directory interface {
	Lookup(name string) (*Tenant, bool)
}

// Static is a fixed Directory.
type Static map[string]*Tenant

// Lookup returns the tenant called name.
func (s Static) Lookup(name string) (*Tenant, bool) {
	t, ok := s[name]
	return t, ok
}

// ErrBadPassword is returned by CheckPassword for a wrong password.
var ErrBadPassword = errors.New("tenant: wrong password")

// CheckPassword verifies password against the tenant's hash in constant
// time. A tenant without a hash cannot authenticate.
func (t *Tenant) CheckPassword(password string) error {
	if !strings.HasPrefix(t.PasswordHash, "$2") {
		return fmt.Errorf("tenant %s: no usable bcrypt password hash", t.Name)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(t.PasswordHash), []byte(password)); err != nil {
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrBadPassword
		}
		return fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	return nil
}

// HashPassword returns a bcrypt hash of password for a tenant file.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("tenant: hash password: %w", err)
	}
	return string(h), nil
}

// MaySend reports whether the tenant may use domain in MAIL FROM or From:.
func (t *Tenant) MaySend(domain string) bool {
	if len(t.SenderDomains) == 0 {
		return true
	}
	domain = strings.ToLower(domain)
	for _, d := range t.SenderDomains {
		d = strings.ToLower(d)
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return true
		}
	}
	return false
}
