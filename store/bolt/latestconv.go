package bolt

import (
	"context"
	"strings"
	"sync"

	"chatgate/core/model"
	"chatgate/store"
)

// latestCache remembers each visitor's newest conversation id, the last
// key of its visitor_convs range, which every LiveChat send_event reads (a
// chat's active thread is its newest): that was a read transaction and a
// slice of every id of the visitor for each message.
//
// It is kept exactly as the file reads, as visitorCache is (bbolt is one
// process and this store its only writer):
//   - the writer, after its transaction and before the committers hear
//     back, raises the entry of each visitor a committed conversation
//     belongs to when it holds one (ids are compared as the keys are
//     ordered); for a visitor it holds no entry of, it bumps the epoch;
//     forgetting visitors and restoring an import clear every entry;
//   - a reader that missed puts what it read only when no entry exists and
//     the epoch is the one it took before its read, so that an old read
//     never replaces or hides a newer write;
//   - a conversation moved to another visitor (desk.ChangeVisitor) leaves
//     its former visitor's entry naming it: LatestConversation checks that
//     the conversation it names is still the visitor's and reads the file
//     otherwise.
//
// Entries are ids only; a full map is dropped whole (epoch bumped).
type latestCache struct {
	mu  sync.Mutex
	m   map[model.VisitorID]model.ConvID
	gen uint64
}

// maxLatest bounds latestCache (about 100 bytes an entry).
const maxLatest = 1 << 17

func newLatestCache() *latestCache {
	return &latestCache{m: make(map[model.VisitorID]model.ConvID)}
}

func (c *latestCache) get(v model.VisitorID) (model.ConvID, bool) {
	c.mu.Lock()
	id, ok := c.m[v]
	c.mu.Unlock()
	return id, ok
}

func (c *latestCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill puts id, read from the file at epoch e, as v's newest
// conversation, unless the cache changed since.
func (c *latestCache) fill(e uint64, v model.VisitorID, id model.ConvID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e != c.gen {
		return
	}
	if _, ok := c.m[v]; ok {
		return
	}
	if len(c.m) >= maxLatest {
		clear(c.m)
		c.gen++
	}
	// v is the caller's string, which may alias a whole request payload
	// (the agent's send_event chat_id, wire.DecodeEventPayload): the
	// cache keeps its own copy of the key (a miss only).
	c.m[model.VisitorID(strings.Clone(string(v)))] = id
}

// drop removes v's entry if it still names id (a conversation no longer
// v's). A reader that read the file before and fills after can only put
// back an entry LatestConversation checks again.
func (c *latestCache) drop(v model.VisitorID, id model.ConvID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[v] == id {
		delete(c.m, v)
	}
}

// stored records what a committed transaction did to visitors'
// conversation lists.
func (c *latestCache) stored(o *ops) {
	if len(o.convs) == 0 && o.forget == nil && o.restore == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if o.forget != nil || o.restore != nil {
		clear(c.m)
		c.gen++
		return
	}
	for i := range o.convs {
		p := &o.convs[i]
		v, id := p.conv.Visitor, p.conv.ID
		cur, ok := c.m[v]
		switch {
		case !ok:
			c.gen++
		case id > cur:
			c.m[v] = id
		}
	}
}

// LatestConversation implements store.LatestConversation: the visitor's
// newest conversation (the last of VisitorConversations), from the
// latest cache and the conversation cache when they hold it.
func (s *Store) LatestConversation(ctx context.Context, v model.VisitorID) (model.Conversation, error) {
	if id, ok := s.latest.get(v); ok {
		conv, err := s.Conversation(ctx, id)
		if err == nil && conv.Visitor == v {
			return conv, nil
		}
		// Moved to another visitor (or gone): ask the file.
		s.latest.drop(v, id)
	}
	e := s.latest.epoch()
	ids, err := s.VisitorConversations(ctx, v)
	if err != nil {
		return model.Conversation{}, err
	}
	if len(ids) == 0 {
		return model.Conversation{}, store.ErrNotFound
	}
	id := ids[len(ids)-1]
	s.latest.fill(e, v, id)
	return s.Conversation(ctx, id)
}
