package postgres

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

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

// shardedMap is the bounded, sharded map under every cache here: get
// counts hits; each shard's epoch moves at every drop, so that a fill that
// began before a drop of its shard is not stored (it may have read the
// record before the change the drop was for); a full shard makes room by
// dropping an arbitrary entry (Go's map order).
type shardedMap[K comparable, V any] struct {
	shards [cacheShards]mapShardOf[K, V]
	hash   func(K) uint32
	hits   atomic.Uint64
}

type mapShardOf[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]V
	epoch uint64
}

func (c *shardedMap[K, V]) init(hash func(K) uint32) {
	c.hash = hash
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
	}
}

func (c *shardedMap[K, V]) shard(k K) *mapShardOf[K, V] { return &c.shards[c.hash(k)%cacheShards] }

// get returns the cached value of k.
func (c *shardedMap[K, V]) get(k K) (V, bool) { return c.getIf(k, nil) }

// getIf returns the cached value of k if use (nil: any) accepts it.
func (c *shardedMap[K, V]) getIf(k K, use func(V) bool) (V, bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	if ok && use != nil && !use(v) {
		var zero V
		return zero, false
	}
	if ok {
		c.hits.Add(1)
	}
	return v, ok
}

// ticket is taken before a read from the database and given to fill.
func (c *shardedMap[K, V]) ticket(k K) uint64 {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epoch
}

// put stores v at k unless keep (given the cached value, if any) says
// the cached value wins (nil: v always wins).
func (c *shardedMap[K, V]) put(k K, v V, keep func(cur V) bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.putLocked(k, v, keep)
}

// fill is put for what a read found: nothing is stored if the shard saw
// a drop since the read's ticket.
func (c *shardedMap[K, V]) fill(k K, v V, ticket uint64, keep func(cur V) bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch == ticket {
		sh.putLocked(k, v, keep)
	}
}

func (sh *mapShardOf[K, V]) putLocked(k K, v V, keep func(cur V) bool) {
	cur, had := sh.m[k]
	if had && keep != nil && !keep(cur) {
		return
	}
	if !had && len(sh.m) >= cacheShardMax {
		for old := range sh.m {
			delete(sh.m, old)
			break
		}
	}
	sh.m[k] = v
}

// dropIf forgets k, unless its cached value fails match (nil matches
// all); the shard's epoch moves unless a cached value was kept.
func (c *shardedMap[K, V]) dropIf(k K, match func(V) bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v, ok := sh.m[k]; ok && match != nil && !match(v) {
		return
	}
	delete(sh.m, k)
	sh.epoch++
}

// reset forgets everything.
func (c *shardedMap[K, V]) reset() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.epoch++
		sh.mu.Unlock()
	}
}

// recCache caches conversation or visitor records by id.
type recCache struct{ shardedMap[string, cachedRec] }

type cachedRec struct {
	data []byte
	rev  int64
	// at is when the copy was taken (store.RecentCopy bounds its age).
	at time.Time
}

func newRecCache() *recCache {
	c := &recCache{}
	c.init(func(id string) uint32 { return fnv32(id) })
	return c
}

// fill stores what a read found, unless the shard saw a drop since the
// read's ticket or the cache already holds a later revision.
func (c *recCache) fill(id string, data []byte, rev int64, ticket uint64) {
	c.shardedMap.fill(id, cachedRec{data: data, rev: rev, at: time.Now()}, ticket, func(cur cachedRec) bool { return cur.rev <= rev })
}

// put stores a record this node committed at rev (or another node's,
// carried by its notice), unless a later revision is cached.
func (c *recCache) put(id string, data []byte, rev int64) {
	c.shardedMap.put(id, cachedRec{data: data, rev: rev, at: time.Now()}, func(cur cachedRec) bool { return cur.rev <= rev })
}

// drop forgets id (another node wrote it, or a commit found it stale).
func (c *recCache) drop(id string) { c.dropIf(id, nil) }

// mapCache caches forward mappings (foreign id → core id): bound once and
// never rebound. Only found mappings are kept (an absent one may be bound
// by the next commit). The one deletion is ForgetIdleVisitors' (a visitor
// without conversations and its mappings): this node's forget empties the
// cache, and on any node a read that finds a visitor or conversation gone
// drops the cached mappings naming it (dropCore), so that the caller's
// next Resolve reads the database.
type mapCache struct {
	shardedMap[store.MapKey, string]

	mu sync.Mutex
	// cores lists, per core id, the keys cached for it, each once (a key
	// put again, by another Resolve or commit of the same mapping, is
	// not listed twice).
	cores map[string][]store.MapKey
}

func newMapCache() *mapCache {
	c := &mapCache{cores: make(map[string][]store.MapKey)}
	c.init(func(k store.MapKey) uint32 { return fnv32(k.Foreign, k.Kind, k.Tenant, k.System) })
	return c
}

func (c *mapCache) put(k store.MapKey, core string) {
	c.mu.Lock()
	if _, ok := c.cores[core]; !ok && len(c.cores) >= cacheShards*cacheShardMax {
		c.mu.Unlock()
		c.reset()
		c.mu.Lock()
	}
	if keys := c.cores[core]; !slices.Contains(keys, k) {
		c.cores[core] = append(keys, k)
	}
	c.mu.Unlock()
	c.shardedMap.put(k, core, nil)
}

// dropCore forgets the cached mappings naming core (it was found gone).
func (c *mapCache) dropCore(core string) {
	c.mu.Lock()
	keys := c.cores[core]
	delete(c.cores, core)
	c.mu.Unlock()
	for _, k := range keys {
		c.dropIf(k, func(v string) bool { return v == core })
	}
}

// reset forgets every mapping.
func (c *mapCache) reset() {
	c.mu.Lock()
	clear(c.cores)
	c.mu.Unlock()
	c.shardedMap.reset()
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
// node's own moves and the other nodes'). Lists are never changed in
// place: a new list replaces one.
type listCache struct{ shardedMap[string, []string] }

func newListCache() *listCache {
	c := &listCache{}
	c.init(func(id string) uint32 { return fnv32(id) })
	return c
}

// fill stores what a read found, unless the shard saw a drop since the
// read's ticket.
func (c *listCache) fill(visitor string, ids []string, ticket uint64) {
	c.shardedMap.fill(visitor, ids, ticket, nil)
}

// saw drops visitor's list unless it holds conv.
func (c *listCache) saw(visitor, conv string) {
	if visitor == "" || conv == "" {
		return
	}
	c.dropIf(visitor, func(ids []string) bool { return !slices.Contains(ids, conv) })
}
