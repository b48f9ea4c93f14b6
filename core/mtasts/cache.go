package mtasts

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"corriere/core/clock"
)

// Options configure a Cache.
type Options struct {
	// Resolver looks up the _mta-sts TXT records and the policy hosts'
	// addresses. Required.
	Resolver Resolver
	// Path is the file the cache is persisted in, normally
	// "mta-sts.json" in the spool directory. The default value "" keeps
	// the cache in memory only.
	Path string
	// RootCAs are the authorities the policy servers' certificates must
	// chain to. The default value nil means the system's roots; tests set
	// a pool with their own authority.
	RootCAs *x509.CertPool
	// Port is the HTTPS port of policy servers. The default value is 443;
	// tests point it at a loopback server.
	Port int
	// FetchTimeout bounds one policy fetch, from the connection to the
	// last byte. The default value is 30s.
	FetchTimeout time.Duration
	// RefreshInterval is how often Run looks for policies to refresh. The
	// default value is 1h.
	RefreshInterval time.Duration
	// RetryAfter is how long a failed fetch is remembered before the next
	// lookup tries again, so a broken policy server is not asked at every
	// delivery. The default value is 5m.
	RetryAfter time.Duration
	// Clock tells the time. The default value is clock.Real{}.
	Clock clock.Clock
	// Logger logs fetches and their failures. The default value is
	// slog.Default().
	Logger *slog.Logger
}

// Cache holds the MTA-STS policies of recipient domains. It is safe for
// concurrent use.
type Cache struct {
	opts    Options
	fetcher *fetcher

	mu       sync.Mutex
	entries  map[string]*entry
	flights  map[string]*flight
	failures map[string]failure

	saveMu sync.Mutex
}

// entry is one domain's cached policy.
type entry struct {
	ID      string    `json:"id"`
	Policy  *Policy   `json:"policy"`
	Fetched time.Time `json:"fetched"`
}

// expires returns when the entry's policy stops being in force.
func (e *entry) expires() time.Time {
	return e.Fetched.Add(time.Duration(e.Policy.MaxAge) * time.Second)
}

// failure is a failed fetch, remembered for RetryAfter.
type failure struct {
	id    string
	err   error
	until time.Time
}

// flight is a fetch in progress, which concurrent lookups wait for.
type flight struct {
	done chan struct{}
	err  error
}

// New returns a Cache, loaded from Options.Path when that file exists.
func New(opts Options) (*Cache, error) {
	if opts.Resolver == nil {
		return nil, errors.New("mtasts: no resolver")
	}
	if opts.Port == 0 {
		opts.Port = 443
	}
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = 30 * time.Second
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = time.Hour
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cache{opts: opts, fetcher: newFetcher(&opts), entries: map[string]*entry{}, flights: map[string]*flight{}, failures: map[string]failure{}}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Lookup returns the policy in force for domain, or nil when the domain
// has none (no record, mode none, or a policy that could never be
// fetched). err, when set, is a *FetchError to report (TLS-RPT) even
// though the lookup fell back to the cached policy or to none: RFC 8461
// section 5 has a sender without a valid policy deliver as if there were
// none, and one with a cached policy keep it until it expires.
func (c *Cache) Lookup(ctx context.Context, domain string) (*Policy, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	txts, err := c.opts.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	id, recErr := FindRecord(txts)
	if err == nil {
		err = recErr
	}
	cached := c.cached(domain)
	switch {
	case err != nil && cached != nil:
		// No record (withdrawn, or a DNS failure an attacker may cause):
		// the cached policy stays until it expires.
		return inForce(cached.Policy), nil
	case err != nil:
		// No record and nothing cached: the domain has no policy. A
		// temporary DNS failure is the same, as RFC 8461 section 5 says.
		return nil, nil
	case cached != nil && cached.ID == id:
		return inForce(cached.Policy), nil
	}
	if err := c.refresh(ctx, domain, id); err != nil {
		if cached != nil {
			return inForce(cached.Policy), err
		}
		return nil, err
	}
	return inForce(c.cached(domain).Policy), nil
}

// inForce returns p, or nil when its mode is none.
func inForce(p *Policy) *Policy {
	if p.Mode == None {
		return nil
	}
	return p
}

// cached returns domain's unexpired entry, or nil.
func (c *Cache) cached(domain string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[domain]
	if e == nil || !c.opts.Clock.Now().Before(e.expires()) {
		return nil
	}
	return e
}

// refresh fetches domain's policy for record id and caches it. Concurrent
// refreshes of one domain share one fetch.
func (c *Cache) refresh(ctx context.Context, domain, id string) error {
	c.mu.Lock()
	if fl, ok := c.failures[domain]; ok && fl.id == id && c.opts.Clock.Now().Before(fl.until) {
		c.mu.Unlock()
		return fl.err
	}
	if f := c.flights[domain]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[domain] = f
	c.mu.Unlock()

	fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
	p, err := c.fetcher.fetch(fetchCtx, domain)
	cancel()
	c.mu.Lock()
	if err == nil {
		c.entries[domain] = &entry{ID: id, Policy: p, Fetched: c.opts.Clock.Now()}
		delete(c.failures, domain)
	} else {
		c.failures[domain] = failure{id: id, err: err, until: c.opts.Clock.Now().Add(c.opts.RetryAfter)}
	}
	delete(c.flights, domain)
	f.err = err
	close(f.done)
	c.mu.Unlock()
	if err != nil {
		c.opts.Logger.Warn("MTA-STS policy fetch failed", "domain", domain, "id", id, "err", err)
		return err
	}
	c.opts.Logger.Info("MTA-STS policy fetched", "domain", domain, "id", id, "mode", p.Mode, "mx", strings.Join(p.MX, " "), "max_age", p.MaxAge)
	if err := c.save(); err != nil {
		c.opts.Logger.Error("MTA-STS cache not persisted", "path", c.opts.Path, "err", err)
	}
	return nil
}

// Run refreshes, every RefreshInterval until ctx ends, the policies past
// half their max_age, so that a policy in use never expires for want of a
// fetch, and forgets the expired ones.
func (c *Cache) Run(ctx context.Context) {
	for {
		t := c.opts.Clock.NewTimer(c.opts.RefreshInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		c.RefreshDue(ctx)
	}
}

// RefreshDue refetches every cached policy past half its max_age whose
// domain still publishes a record, and drops the expired policies and the
// remembered failures whose time is over.
func (c *Cache) RefreshDue(ctx context.Context) {
	now := c.opts.Clock.Now()
	var due []string
	c.mu.Lock()
	for d, f := range c.failures {
		if !now.Before(f.until) {
			delete(c.failures, d)
		}
	}
	for d, e := range c.entries {
		switch {
		case !now.Before(e.expires()):
			delete(c.entries, d)
		case !now.Before(e.Fetched.Add(time.Duration(e.Policy.MaxAge) * time.Second / 2)):
			due = append(due, d)
		}
	}
	c.mu.Unlock()
	for _, d := range due {
		if ctx.Err() != nil {
			return
		}
		txts, err := c.opts.Resolver.LookupTXT(ctx, "_mta-sts."+d)
		if err != nil {
			continue
		}
		id, err := FindRecord(txts)
		if err != nil {
			continue
		}
		_ = c.refresh(ctx, d, id) // refresh logs its failures; the cached policy stays
	}
}

// load reads the persisted cache, if any.
func (c *Cache) load() error {
	if c.opts.Path == "" {
		return nil
	}
	b, err := os.ReadFile(c.opts.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mtasts: load cache: %w", err)
	}
	var entries map[string]*entry
	if err := json.Unmarshal(b, &entries); err != nil {
		// A damaged cache costs refetches, not mail: start empty.
		c.opts.Logger.Warn("MTA-STS cache unreadable; starting empty", "path", c.opts.Path, "err", err)
		return nil
	}
	for d, e := range entries {
		if e == nil || e.Policy == nil {
			continue
		}
		c.entries[d] = e
	}
	return nil
}

// save writes the cache to Options.Path, atomically.
func (c *Cache) save() error {
	if c.opts.Path == "" {
		return nil
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	b, err := json.MarshalIndent(c.entries, "", "  ")
	c.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := c.opts.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("mtasts: save cache: %w", err)
	}
	if err := os.Rename(tmp, c.opts.Path); err != nil {
		return fmt.Errorf("mtasts: save cache: %w", err)
	}
	if d, err := os.Open(filepath.Dir(c.opts.Path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
