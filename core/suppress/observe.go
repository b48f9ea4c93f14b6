package suppress

import (
	"errors"
	"fmt"
)

// Change is one change of the list: an entry added (or replaced), or
// removed.
type Change struct {
	Entry   Entry `json:"entry"`
	Removed bool  `json:"removed,omitempty"`
}

// OnChange registers fn to be called after every change made through Add,
// AddIfAbsent, Import and Remove, once it is stored; core/cluster passes
// them on to the other nodes. Changes made with Apply are not reported.
// fn must return quickly.
func (l *List) OnChange(fn func(Change)) {
	l.obsMu.Lock()
	defer l.obsMu.Unlock()
	l.observers = append(l.observers, fn)
}

// notify reports c to the observers.
func (l *List) notify(c Change) {
	l.obsMu.Lock()
	obs := l.observers
	l.obsMu.Unlock()
	for _, fn := range obs {
		fn(c)
	}
}

// Apply stores a change made elsewhere (on another node of a cluster)
// without reporting it to the observers. The write is not synced: the
// change is kept by the node that made it.
func (l *List) Apply(c Change) error {
	e := c.Entry
	if err := l.normalize(&e); err != nil {
		return err
	}
	if !c.Removed {
		return l.put(e, false)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ks.Delete(key(e.Tenant, e.Address), false); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("suppress: remove %s for %s: %w", e.Address, TenantLabel(e.Tenant), err)
	}
	return nil
}
