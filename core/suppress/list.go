package suppress

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"corriere/core/address"
	"corriere/core/event"
	"corriere/core/spool"
)

// Sources of entries: what added an address to the list.
const (
	SourceBounce    = "bounce"    // a hard bounce, synchronous or asynchronous
	SourceComplaint = "complaint" // a feedback-loop report
	SourceManual    = "manual"    // an operator, with `corriere suppression add`
	SourceImport    = "import"    // a CSV import
)

// AllTenants, given as the tenant to Scan, ExportCSV and the admin API,
// selects the entries of every tenant. It is not a valid tenant name.
const AllTenants = "*"

// keyspace is the spool keyspace the list lives in.
const keyspace = "suppression"

// Entry is one suppressed address of one tenant.
type Entry struct {
	// Tenant is the tenant the address is suppressed for; "" is mail
	// relayed without AUTH.
	Tenant string `json:"tenant"`
	// Address is the lower-cased address.
	Address string `json:"address"`
	// Category is the bounce taxonomy's category ("userunknown",
	// "hostunknown", "feedback", ...) or a word an operator chose.
	Category event.Category `json:"category,omitempty"`
	// Reason says why in a sentence: the remote reply of the bounce, the
	// complaint, an operator's note.
	Reason string `json:"reason,omitempty"`
	// Source is what added the entry: SourceBounce, SourceComplaint,
	// SourceManual or SourceImport.
	Source string `json:"source,omitempty"`
	// Added is when the address was suppressed.
	Added time.Time `json:"added"`
	// MsgID is the message whose bounce or complaint added the entry.
	MsgID string `json:"msg_id,omitempty"`
}

// ErrNotFound is returned by Remove for an address that is not suppressed.
var ErrNotFound = errors.New("suppress: address not suppressed")

// List is the suppression list of every tenant. It is safe for concurrent
// use.
type List struct {
	ks  *spool.Keyspace
	now func() time.Time
	mu  sync.Mutex // serialises AddIfAbsent's read-then-write

	obsMu     sync.Mutex
	observers []func(Change) // see OnChange
}

// Options configure New.
type Options struct {
	// Now is the clock, used when an entry has no Added time. The default
	// value is time.Now.
	Now func() time.Time
}

// New returns the list kept in sp. opts may be nil.
func New(sp *spool.Spool, opts *Options) *List {
	l := &List{ks: sp.Keyspace(keyspace), now: time.Now}
	if opts != nil && opts.Now != nil {
		l.now = opts.Now
	}
	return l
}

// NormalizeAddress returns the form addresses are stored and looked up in:
// angle brackets and surrounding spaces removed, syntax checked (SMTPUTF8
// addresses allowed), the domain in A-labels, everything lower-cased.
func NormalizeAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	a, err := address.Parse(s, address.Options{AllowUTF8: true})
	if err != nil {
		return "", fmt.Errorf("suppress: address %q: %w", s, err)
	}
	return strings.ToLower(a.String()), nil
}

// ValidateTenant reports whether name can be a tenant of the list: any
// string without control characters, other than AllTenants ("" is the
// tenant of relayed mail).
func ValidateTenant(name string) error {
	if name == AllTenants {
		return fmt.Errorf("suppress: %q is not a tenant name (it selects every tenant)", name)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("suppress: tenant %q contains a control character", name)
	}
	return nil
}

func key(tenant, addr string) string { return tenant + "\x00" + addr }

// normalize validates and normalises e in place and fills Added.
func (l *List) normalize(e *Entry) error {
	if err := ValidateTenant(e.Tenant); err != nil {
		return err
	}
	a, err := NormalizeAddress(e.Address)
	if err != nil {
		return err
	}
	e.Address = a
	if e.Added.IsZero() {
		e.Added = l.now()
	}
	e.Added = e.Added.UTC().Truncate(time.Second)
	return nil
}

// Add suppresses e.Address for e.Tenant, replacing any entry it had. It
// returns the entry as stored (address normalised, Added filled in with
// the current time if zero). The write is synced.
func (l *List) Add(e Entry) (Entry, error) {
	if err := l.normalize(&e); err != nil {
		return e, err
	}
	if err := l.put(e, true); err != nil {
		return e, err
	}
	l.notify(Change{Entry: e})
	return e, nil
}

// AddIfAbsent adds e unless its address is already suppressed for its
// tenant, in which case the existing entry is kept untouched (its date is
// the first suppression's). It reports whether e was added. The bounce
// listener calls it for hard asynchronous bounces and complaints.
func (l *List) AddIfAbsent(e Entry) (bool, error) {
	if err := l.normalize(&e); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok, err := l.ks.Get(key(e.Tenant, e.Address)); err != nil || ok {
		return false, err
	}
	if err := l.put(e, true); err != nil {
		return false, err
	}
	l.notify(Change{Entry: e})
	return true, nil
}

func (l *List) put(e Entry, sync bool) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	if err := l.ks.Set(key(e.Tenant, e.Address), v, sync); err != nil {
		return fmt.Errorf("suppress: add %s for %s: %w", e.Address, TenantLabel(e.Tenant), err)
	}
	return nil
}

// Lookup returns the entry of addr for tenant and whether there is one. An
// address that does not parse is not suppressed.
func (l *List) Lookup(tenant, addr string) (Entry, bool, error) {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return Entry{}, false, nil
	}
	v, ok, err := l.ks.Get(key(tenant, a))
	if err != nil || !ok {
		return Entry{}, false, err
	}
	e, err := decode(tenant, a, v)
	if err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// Remove takes addr off tenant's list and returns the entry it had; it
// returns an error wrapping ErrNotFound when there was none. The write is
// synced.
func (l *List) Remove(tenant, addr string) (Entry, error) {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return Entry{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok, err := l.ks.Get(key(tenant, a))
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, fmt.Errorf("%w: %s for %s", ErrNotFound, a, TenantLabel(tenant))
	}
	e, err := decode(tenant, a, v)
	if err != nil {
		e = Entry{Tenant: tenant, Address: a} // removing a damaged record is fine
	}
	if err := l.ks.Delete(key(tenant, a), true); err != nil {
		return Entry{}, fmt.Errorf("suppress: remove %s for %s: %w", a, TenantLabel(tenant), err)
	}
	l.notify(Change{Entry: e, Removed: true})
	return e, nil
}

// TenantLabel names a tenant in a sentence: "tenant acme", or "relayed
// mail (no tenant)" for "".
func TenantLabel(tenant string) string {
	if tenant == "" {
		return "relayed mail (no tenant)"
	}
	return "tenant " + tenant
}

// Scan calls fn for every entry of tenant (every tenant for AllTenants),
// ordered by tenant then address, until fn returns an error, which Scan
// returns.
func (l *List) Scan(tenant string, fn func(Entry) error) error {
	prefix := ""
	if tenant != AllTenants {
		prefix = tenant + "\x00"
	}
	return l.ks.Scan(prefix, func(k string, v []byte) error {
		t, a, ok := strings.Cut(k, "\x00")
		if !ok {
			return nil // not a record of ours
		}
		e, err := decode(t, a, v)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// Import adds every entry, replacing existing ones, so importing the same
// entries twice leaves the same list. The entries are validated first and
// nothing is written if one is invalid; the writes share one sync.
func (l *List) Import(entries []Entry) error {
	for i := range entries {
		if err := l.normalize(&entries[i]); err != nil {
			return err
		}
	}
	for i, e := range entries {
		// Pebble's log is sequential: syncing the last write makes the
		// earlier ones durable too.
		if err := l.put(e, i == len(entries)-1); err != nil {
			return err
		}
	}
	for _, e := range entries {
		l.notify(Change{Entry: e})
	}
	return nil
}

// decode reads a stored entry; the key is the authority for tenant and
// address.
func decode(tenant, addr string, v []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(v, &e); err != nil {
		return Entry{}, fmt.Errorf("suppress: entry %s for %s: %w", addr, TenantLabel(tenant), err)
	}
	e.Tenant, e.Address = tenant, addr
	return e, nil
}
