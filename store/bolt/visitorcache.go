package bolt

import (
	"encoding/json"
	"maps"
	"sync"

	"chatgate/core/model"
)

// visitorCacheSize is the entries per generation of visitorCache: two
// generations of a few hundred bytes each stay within a few tens of MiB.
const visitorCacheSize = 1 << 15

// visitorCache holds decoded visitor records. The desk reads the visitor
// of every visitor message (the ban check); each read was a read
// transaction and a JSON decode.
//
// It is kept exactly as the file reads (bbolt is one process and this
// store its only writer):
//   - the writer puts every visitor it commits, decoded from the bytes
//     written, after the transaction and before the committers hear back,
//     in commit order;
//   - a reader that missed may put what it read, unless the cache already
//     holds that visitor at a revision as new (a revision grows with every
//     write), and unless an entry was evicted or a visitor deleted since the
//     reader began its read (epoch): so an old read never replaces a newer
//     write, nor brings back a deleted visitor;
//   - deleted visitors (ForgetIdleVisitors) and restored ones are dropped
//     by the writer before anyone hears of the commit.
//
// Eviction is by generation, as mapCache: when the current map is full it
// becomes the previous one; a hit there moves back into the current one.
type visitorCache struct {
	mu        sync.Mutex
	cur, prev map[model.VisitorID]*model.Visitor // entries are never modified
	gen       uint64                             // bumped by eviction and deletion
}

func newVisitorCache() *visitorCache {
	return &visitorCache{cur: make(map[model.VisitorID]*model.Visitor), prev: make(map[model.VisitorID]*model.Visitor)}
}

// get returns a copy of the cached visitor, which the caller may modify.
func (c *visitorCache) get(id model.VisitorID) (model.Visitor, bool) {
	c.mu.Lock()
	p, ok := c.cur[id]
	if !ok {
		if p, ok = c.prev[id]; ok {
			c.putLocked(p)
		}
	}
	c.mu.Unlock()
	if !ok {
		return model.Visitor{}, false
	}
	return cloneVisitor(p), true
}

// rev returns the revision of the cached visitor, if cached.
func (c *visitorCache) rev(id model.VisitorID) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.lookupLocked(id); p != nil {
		return p.Rev, true
	}
	return 0, false
}

// epoch is the cache's epoch, to take before reading a visitor that will
// be put.
func (c *visitorCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill caches v, read from the file at epoch e (a copy is kept), unless
// the cache changed in a way that could make v older than the file.
func (c *visitorCache) fill(e uint64, v *model.Visitor) {
	cp := cloneVisitor(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e != c.gen {
		return
	}
	if old := c.lookupLocked(v.ID); old != nil && old.Rev >= v.Rev {
		return
	}
	c.putLocked(&cp)
}

// stored records what a committed transaction did to visitors: o's
// visitor records (decoded in encode from the bytes written, see
// visitorPut) and the visitors it deleted or restored.
func (c *visitorCache) stored(o *ops) {
	if len(o.visitors) == 0 && (o.forget == nil || len(o.forget.gone) == 0) && o.restore == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range o.visitors {
		p := &o.visitors[i]
		if p.decoded == nil {
			c.dropLocked(model.VisitorID(p.key))
			continue
		}
		v := *p.decoded
		v.Rev = p.rev
		c.putLocked(&v)
	}
	if o.forget != nil {
		for _, id := range o.forget.gone {
			c.dropLocked(id)
		}
	}
	if o.restore != nil {
		for _, r := range o.restore.recs {
			if string(r.bucket) == string(bVisitors) {
				c.dropLocked(model.VisitorID(r.key))
			}
		}
	}
}

func (c *visitorCache) lookupLocked(id model.VisitorID) *model.Visitor {
	if p, ok := c.cur[id]; ok {
		return p
	}
	return c.prev[id]
}

func (c *visitorCache) dropLocked(id model.VisitorID) {
	c.gen++
	delete(c.cur, id)
	delete(c.prev, id)
}

func (c *visitorCache) putLocked(v *model.Visitor) {
	if len(c.cur) >= visitorCacheSize {
		c.prev, c.cur = c.cur, make(map[model.VisitorID]*model.Visitor, visitorCacheSize)
		c.gen++
	}
	delete(c.prev, v.ID)
	c.cur[v.ID] = v
}

// cloneVisitor deep-copies what a visitor shares by reference.
func cloneVisitor(p *model.Visitor) model.Visitor {
	v := *p
	v.Fields = maps.Clone(p.Fields)
	v.SeenUpTo = maps.Clone(p.SeenUpTo)
	if p.Props != nil {
		v.Props = make(map[string]map[string]json.RawMessage, len(p.Props))
		for ns, m := range p.Props {
			cm := maps.Clone(m)
			for k, val := range cm {
				cm[k] = append(json.RawMessage(nil), val...)
			}
			v.Props[ns] = cm
		}
	}
	return v
}
