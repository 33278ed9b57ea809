package bolt

import "sync"

// mapCacheSize is the entries per generation of mapCache: two generations
// of ~100-byte entries stay within a few tens of MiB.
const mapCacheSize = 1 << 16

// mapCache remembers Resolve answers. A mapping, once written, never
// changes (commits check "same or absent"), so readers may fill the cache
// themselves, in any order. Mappings are deleted only with an idle
// anonymous visitor (ForgetIdleVisitors): the writer drops their keys
// before anyone hears of the commit, and bumps the cache's epoch, so that
// a reader that read a deleted mapping before the commit does not put it
// back afterwards (put takes the epoch read before the reader's read). Only found mappings are kept: an absent one
// may appear at any commit. Every v2 poll resolves two mappings; this
// spares it two bbolt read transactions.
//
// Eviction is by generation: when the current map is full it becomes the
// previous one and a new one starts; a hit in the previous generation
// moves back into the current one. So memory stays within two
// generations and mappings in use stay cached.
type mapCache struct {
	mu        sync.Mutex
	cur, prev map[string]string
	gen       uint64 // bumped by drop
}

func newMapCache() *mapCache {
	return &mapCache{cur: make(map[string]string), prev: make(map[string]string)}
}

func (c *mapCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[key]; ok {
		return v, true
	}
	v, ok := c.prev[key]
	if ok {
		c.putLocked(key, v)
	}
	return v, ok
}

// epoch is the cache's deletion epoch, to take before reading a mapping
// that will be put.
func (c *mapCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches a mapping read at epoch e, unless mappings were deleted since.
func (c *mapCache) put(e uint64, key, val string) {
	c.mu.Lock()
	if e == c.gen {
		c.putLocked(key, val)
	}
	c.mu.Unlock()
}

// drop forgets deleted mappings.
func (c *mapCache) drop(keys []string) {
	c.mu.Lock()
	c.gen++
	for _, k := range keys {
		delete(c.cur, k)
		delete(c.prev, k)
	}
	c.mu.Unlock()
}

func (c *mapCache) putLocked(key, val string) {
	if len(c.cur) >= mapCacheSize {
		c.prev, c.cur = c.cur, make(map[string]string, mapCacheSize)
	}
	c.cur[key] = val
}
