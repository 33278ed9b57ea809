package bolt

import (
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

// stored records the conversations of o, which a transaction has just
// committed. Entries are decoded from the very bytes written, so that a
// hit returns exactly what reading bbolt would; a record the commit left
// as it was (a message that changed nothing but LastSeq, see fileSchema)
// keeps its entry, decoded from those same bytes, with the new LastSeq and
// revision: no JSON decoding on the message path.
func (c *convCache) stored(o *ops) {
	if len(o.convs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range o.convs {
		p := &o.convs[i]
		id := model.ConvID(p.key)
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
