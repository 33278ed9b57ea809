package postgres

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"chatgate/core/model"
	"chatgate/store"
)

// Per-node caches (see "Caches" in the package doc for how each stays
// true). Records are kept as the JSON the store wrote or read, with their
// revision: a hit decodes a fresh copy, so that a caller changing what it
// got (the desk appends to a conversation's members, sets its props) never
// changes the cache.

// cacheShards spreads the caches' locks; cacheShardMax bounds each shard
// (records and mappings counted apart), so a node keeps at most
// cacheShards*cacheShardMax of each.
const (
	cacheShards   = 64
	cacheShardMax = 1024
)

// recCache caches conversation or visitor records by id.
type recCache struct {
	shards [cacheShards]recShard
	hits   atomic.Uint64
}

type recShard struct {
	mu sync.Mutex
	m  map[string]cachedRec
	// epoch moves at every drop: a fill that began before a drop of its
	// shard is not stored (it may have read the record before the change
	// the drop was for).
	epoch uint64
}

type cachedRec struct {
	data []byte
	rev  int64
}

func newRecCache() *recCache {
	c := &recCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedRec)
	}
	return c
}

func (c *recCache) shard(id string) *recShard { return &c.shards[fnv32(id)%cacheShards] }

// get returns the cached record of id.
func (c *recCache) get(id string) (cachedRec, bool) {
	sh := c.shard(id)
	sh.mu.Lock()
	r, ok := sh.m[id]
	sh.mu.Unlock()
	if ok {
		c.hits.Add(1)
	}
	return r, ok
}

// ticket is taken before a read from the database and given to fill.
func (c *recCache) ticket(id string) uint64 {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epoch
}

// fill stores what a read found, unless the shard saw a drop since the
// read's ticket or the cache already holds a later revision.
func (c *recCache) fill(id string, data []byte, rev int64, ticket uint64) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch != ticket {
		return
	}
	c.putLocked(sh, id, data, rev)
}

// put stores a record this node committed at rev (or another node's,
// carried by its notice), unless a later revision is cached.
func (c *recCache) put(id string, data []byte, rev int64) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c.putLocked(sh, id, data, rev)
}

func (c *recCache) putLocked(sh *recShard, id string, data []byte, rev int64) {
	if cur, ok := sh.m[id]; ok && cur.rev > rev {
		return
	}
	if _, ok := sh.m[id]; !ok && len(sh.m) >= cacheShardMax {
		for k := range sh.m { // an arbitrary victim (Go's map order)
			delete(sh.m, k)
			break
		}
	}
	sh.m[id] = cachedRec{data: data, rev: rev}
}

// drop forgets id (another node wrote it, or a commit found it stale).
func (c *recCache) drop(id string) {
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.epoch++
	sh.mu.Unlock()
}

// reset forgets everything.
func (c *recCache) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.epoch++
		sh.mu.Unlock()
	}
}

// mapCache caches forward mappings (foreign id → core id): bound once and
// never rebound. Only found mappings are kept (an absent one may be bound
// by the next commit). The one deletion is ForgetIdleVisitors' (a visitor
// without conversations and its mappings): this node's forget empties the
// cache, and on any node a read that finds a visitor or conversation gone
// drops the cached mappings naming it (dropCore), so that the caller's
// next Resolve reads the database.
type mapCache struct {
	shards [cacheShards]mapShard
	hits   atomic.Uint64

	mu    sync.Mutex
	cores map[string][]store.MapKey // core id -> cached keys naming it
}

type mapShard struct {
	mu sync.Mutex
	m  map[store.MapKey]string
}

func newMapCache() *mapCache {
	c := &mapCache{cores: make(map[string][]store.MapKey)}
	for i := range c.shards {
		c.shards[i].m = make(map[store.MapKey]string)
	}
	return c
}

func (c *mapCache) shard(k store.MapKey) *mapShard {
	return &c.shards[fnv32(k.Foreign, k.Kind, k.Tenant, k.System)%cacheShards]
}

func (c *mapCache) get(k store.MapKey) (string, bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	if ok {
		c.hits.Add(1)
	}
	return v, ok
}

func (c *mapCache) put(k store.MapKey, core string) {
	c.mu.Lock()
	if len(c.cores) >= cacheShards*cacheShardMax {
		c.mu.Unlock()
		c.reset()
		c.mu.Lock()
	}
	c.cores[core] = append(c.cores[core], k)
	c.mu.Unlock()
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= cacheShardMax {
		for old := range sh.m {
			delete(sh.m, old)
			break
		}
	}
	sh.m[k] = core
}

// dropCore forgets the cached mappings naming core (it was found gone).
func (c *mapCache) dropCore(core string) {
	c.mu.Lock()
	keys := c.cores[core]
	delete(c.cores, core)
	c.mu.Unlock()
	for _, k := range keys {
		sh := c.shard(k)
		sh.mu.Lock()
		if sh.m[k] == core {
			delete(sh.m, k)
		}
		sh.mu.Unlock()
	}
}

// reset forgets every mapping.
func (c *mapCache) reset() {
	c.mu.Lock()
	clear(c.cores)
	c.mu.Unlock()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// fnv32 hashes strings (FNV-1a) to pick a shard.
func fnv32(ss ...string) uint32 {
	h := uint32(2166136261)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		h ^= 0xff
		h *= 16777619
	}
	return h
}

// Committed tells the store of a conversation another node committed, at
// c.Rev (from that node's notice, hub.Cache): the copy replaces an older
// cached one, so that this node's next command on it needs no read.
func (s *Store) Committed(c model.Conversation) {
	if c.ID == "" || c.Rev == 0 {
		return
	}
	data, err := json.Marshal(c)
	if err != nil {
		s.convs.drop(string(c.ID))
		return
	}
	s.convs.put(string(c.ID), data, int64(c.Rev))
	s.threads.saw(string(c.Visitor), string(c.ID))
}

// Changed tells the store that another node changed conv or visitor (or
// both) without saying how (hub.Cache): their cached copies are forgotten.
func (s *Store) Changed(conv model.ConvID, visitor model.VisitorID) {
	if conv != "" {
		s.convs.drop(string(conv))
	}
	if visitor != "" {
		s.visitors.drop(string(visitor))
		s.threads.saw(string(visitor), string(conv))
	}
}

// Forget drops every cached record (hub.Cache): the node may have missed
// notices (its listener reconnected), so no copy is trusted any more.
// Mappings stay: they never change.
func (s *Store) Forget() {
	s.convs.reset()
	s.visitors.reset()
	s.threads.reset()
}

// CacheStats counts the reads the caches answered since Open.
type CacheStats struct {
	Conversations, Visitors, Mappings, Threads uint64
}

// CacheStats returns how many reads the caches answered (for metrics and
// tests).
func (s *Store) CacheStats() CacheStats {
	return CacheStats{Conversations: s.convs.hits.Load(), Visitors: s.visitors.hits.Load(), Mappings: s.maps.hits.Load(), Threads: s.threads.hits.Load()}
}

// listCache caches each visitor's conversation ids (VisitorConversations),
// oldest first. A list grows when a conversation is started and loses one
// only when desk.ChangeVisitor moves it to another visitor: whoever learns
// of a conversation the list lacks (this node's commit, another node's
// notice) drops the list, and a move drops the previous visitor's list
// (its notice names PrevVisitor; hub.Cluster calls Changed for this
// node's own moves and the other nodes').
type listCache struct {
	shards [cacheShards]listShard
	hits   atomic.Uint64
}

type listShard struct {
	mu    sync.Mutex
	m     map[string][]string
	epoch uint64
}

func newListCache() *listCache {
	c := &listCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]string)
	}
	return c
}

func (c *listCache) shard(id string) *listShard { return &c.shards[fnv32(id)%cacheShards] }

func (c *listCache) get(visitor string) ([]string, bool) {
	sh := c.shard(visitor)
	sh.mu.Lock()
	ids, ok := sh.m[visitor]
	sh.mu.Unlock()
	if ok {
		c.hits.Add(1)
	}
	return ids, ok // never changed in place: a new list replaces it
}

func (c *listCache) ticket(visitor string) uint64 {
	sh := c.shard(visitor)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epoch
}

// fill stores what a read found, unless the shard saw a drop since the
// read's ticket.
func (c *listCache) fill(visitor string, ids []string, ticket uint64) {
	sh := c.shard(visitor)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch != ticket {
		return
	}
	if _, ok := sh.m[visitor]; !ok && len(sh.m) >= cacheShardMax {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[visitor] = ids
}

// saw drops visitor's list unless it holds conv.
func (c *listCache) saw(visitor, conv string) {
	if visitor == "" || conv == "" {
		return
	}
	sh := c.shard(visitor)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ids, ok := sh.m[visitor]; ok && slices.Contains(ids, conv) {
		return
	}
	delete(sh.m, visitor)
	sh.epoch++
}

func (c *listCache) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.epoch++
		sh.mu.Unlock()
	}
}
