package bolt

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"chatgate/core/model"
)

// convCache holds the decoded records of the conversations written since
// the store opened that are not closed. Every visitor poll, message and
// agent action reads its conversation; decoding its JSON from bbolt was
// the largest single cost of the v2 poll path and a good part of Post's.
//
// Only the writer fills it, after its transaction committed and before the
// committers hear back, in commit order: so a reader that finds an entry
// sees a committed state no older than anything already acknowledged, and
// a reader can never put back a value older than the writer's. Closed
// conversations are dropped, which bounds the cache by the conversations
// in progress (what a desk holds anyway) rather than the whole history;
// they are rarely read on hot paths.
type convCache struct {
	mu sync.RWMutex
	m  map[model.ConvID]*model.Conversation // entries are never modified
}

func newConvCache() *convCache {
	return &convCache{m: make(map[model.ConvID]*model.Conversation)}
}

// get returns a copy of the cached conversation, which the caller may
// modify freely.
func (c *convCache) get(id model.ConvID) (model.Conversation, bool) {
	c.mu.RLock()
	p := c.m[id]
	c.mu.RUnlock()
	if p == nil {
		return model.Conversation{}, false
	}
	return cloneConv(p), true
}

// peek returns the cached conversation itself, which the caller must not
// modify, or nil.
func (c *convCache) peek(id model.ConvID) *model.Conversation {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id]
}

// sameAs returns the revision of the cache's entry for conv when it is
// the same as conv in all but LastSeq and Rev, and at conv's revision
// unless conv is written unconditionally (Rev 0): then the record stored
// at that revision is the JSON conv would encode to (see
// convPut.cachedRev). It returns 0 otherwise.
func (c *convCache) sameAs(conv *model.Conversation) uint64 {
	p := c.peek(conv.ID)
	if p == nil || conv.Rev != 0 && conv.Rev != p.Rev || !equalButSeq(p, conv) {
		return 0
	}
	return p.Rev
}

// equalButSeq reports whether a and b are equal in every field but
// LastSeq and Rev, the fields a conversation record's JSON leaves out
// (see storedConv). Times compare as values (zone and monotonic reading
// included), so a time that merely reads the same counts as a change; nil
// and empty slices and maps are alike (the JSON omits both).
// TestEqualButSeqFields fails when model.Conversation gains a field this
// does not compare.
func equalButSeq(a, b *model.Conversation) bool {
	if a.ID != b.ID || a.Visitor != b.Visitor || a.Department != b.Department || a.State != b.State ||
		a.Agent != b.Agent || a.Origin != b.Origin || a.Owner != b.Owner ||
		a.CreatedAt != b.CreatedAt || a.AssignedAt != b.AssignedAt || a.ClosedAt != b.ClosedAt {
		return false
	}
	if (a.ClosedBy == nil) != (b.ClosedBy == nil) || a.ClosedBy != nil && *a.ClosedBy != *b.ClosedBy {
		return false
	}
	if !slices.Equal(a.Tags, b.Tags) || !slices.Equal(a.Followers, b.Followers) || !slices.Equal(a.Members, b.Members) ||
		!slices.Equal(a.Mirrors, b.Mirrors) || !slices.Equal(a.HiddenMembers, b.HiddenMembers) {
		return false
	}
	if len(a.Props) != len(b.Props) {
		return false
	}
	for ns, am := range a.Props {
		bm, ok := b.Props[ns]
		if !ok || len(am) != len(bm) {
			return false
		}
		for k, av := range am {
			bv, ok := bm[k]
			if !ok || !bytes.Equal(av, bv) {
				return false
			}
		}
	}
	return true
}

// stored records the conversations of o, which a transaction has just
// committed. Entries are decoded from the very bytes written, so that a
// hit returns exactly what reading bbolt would; a record the commit left
// as it was (a message that changed nothing but LastSeq, see fileSchema)
// keeps its entry, decoded from those same bytes, with the new LastSeq and
// revision: no JSON decoding on the message path.
//
// A conversation whose events o writes without its record (an event
// alone, an import) is dropped: a reader of the file derives its LastSeq
// and revision from its events too (see storedConv), and the writer relies
// on an entry being exactly what the file reads as (see convPut.known).
func (c *convCache) stored(o *ops) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.eventConvs(func(id []byte) {
		for i := range o.convs {
			if string(o.convs[i].key) == string(id) {
				return
			}
		}
		delete(c.m, model.ConvID(id))
	})
	for i := range o.convs {
		p := &o.convs[i]
		id := p.conv.ID // a string already: model.ConvID(p.key) would copy it
		if old := c.m[id]; p.same && old != nil {
			next := *old // shares old's slices and maps: entries are never modified
			next.LastSeq, next.Rev = p.seq, p.rev
			c.m[id] = &next
			continue
		}
		conv := new(model.Conversation)
		if err := json.Unmarshal(p.body, conv); err != nil {
			// encode made these bytes from a model.Conversation; should
			// they not decode, reads go to the file, which says why.
			delete(c.m, id)
			continue
		}
		conv.LastSeq, conv.Rev = p.seq, p.rev
		if conv.State == model.StateClosed {
			delete(c.m, id)
		} else {
			c.m[id] = conv
		}
	}
}

// cloneConv deep-copies what a conversation shares by reference, so that
// neither a caller's later changes reach the cache nor the reverse.
func cloneConv(p *model.Conversation) model.Conversation {
	c := *p
	if p.ClosedBy != nil {
		by := *p.ClosedBy
		c.ClosedBy = &by
	}
	if p.Props != nil {
		c.Props = make(map[string]map[string]json.RawMessage, len(p.Props))
		for ns, m := range p.Props {
			cm := maps.Clone(m)
			for k, v := range cm {
				cm[k] = slices.Clone(v)
			}
			c.Props[ns] = cm
		}
	}
	c.Tags = slices.Clip(slices.Clone(p.Tags))
	c.Followers = slices.Clip(slices.Clone(p.Followers))
	c.Members = slices.Clip(slices.Clone(p.Members))
	return c
}
