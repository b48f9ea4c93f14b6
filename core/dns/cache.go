package dns

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// key names one cached question: a normalised name (lower case, no trailing
// dot) and a query type.
type key struct {
	name  string
	qtype uint16
}

// cache holds answers until they expire, evicting the least recently used
// when it is full.
type cache struct {
	max int

	mu      sync.Mutex
	entries map[key]*list.Element // values are *cacheEntry
	lru     list.List             // most recently used at the front

	hits, misses atomic.Uint64
}

type cacheEntry struct {
	key     key
	ans     *answer
	expires time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[key]*list.Element)}
}

// get returns the answer cached for k that is still fresh at now, or nil.
func (c *cache) get(k key, now time.Time) *answer {
	c.mu.Lock()
	el, ok := c.entries[k]
	if ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			c.hits.Add(1)
			return e.ans
		}
		c.lru.Remove(el)
		delete(c.entries, k)
	}
	c.mu.Unlock()
	c.misses.Add(1)
	return nil
}

// put caches a for k until expires, replacing any older answer.
func (c *cache) put(k key, a *answer, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*cacheEntry)
		e.ans, e.expires = a, expires
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, ans: a, expires: expires})
	for len(c.entries) > c.max {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}
