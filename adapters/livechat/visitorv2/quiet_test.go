package visitorv2

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// copyStore plays a node's cache (store/postgres on several nodes): under
// store.RecentCopy it answers a conversation from the copy set for it, as
// it stands, however far behind; every other read goes to the store, and
// is counted.
type copyStore struct {
	store.Store
	mu     sync.Mutex
	copies map[model.ConvID]model.Conversation
	fresh  int
}

func (s *copyStore) Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error) {
	s.mu.Lock()
	c, ok := s.copies[id]
	if !ok || store.RecentOK(ctx) == 0 {
		s.fresh++
	}
	s.mu.Unlock()
	if ok && store.RecentOK(ctx) > 0 {
		store.UsedCopy(ctx)
		return c, nil
	}
	return s.Store.Conversation(ctx, id)
}

func (s *copyStore) freshReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh
}

// TestQuietPollFromCopy: a poll answers "no events" from the node's copy
// of the conversation only when the copy is the caller's and has nothing
// after the cursor (a copy behind another node's commit answers as an
// earlier poll would, and the next poll with a current copy brings the
// event); a copy that claims events or names another visitor never
// decides what is shown: the poll reads the store and answers from it.
func TestQuietPollFromCopy(t *testing.T) {
	cs := &copyStore{copies: map[model.ConvID]model.Conversation{}}
	h := newHarnessOn(t, time.Hour, func(st store.Store) store.Store { cs.Store = st; return cs })
	sid := h.start("vq")
	convID, err := cs.Resolve(t.Context(), store.MapKey{System: System, Tenant: lic, Kind: kindSession, Foreign: sid})
	if err != nil {
		t.Fatal(err)
	}
	id := model.ConvID(convID)
	real, err := cs.Store.Conversation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	last := real.LastSeq
	if _, _, err := h.d.Post(t.Context(), desk.PostRequest{Conv: id, Author: model.Author{Kind: model.AuthorAgent, ID: "a@x", Name: "Ann"},
		Draft: desk.Draft{Kind: model.KindMessage, Text: "an answer"}}); err != nil {
		t.Fatal(err)
	}
	after, err := cs.Store.Conversation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	added := int(after.LastSeq - last) // the answer (and the agent joining, if it did now)
	other := real
	other.Visitor = "someone-else"
	claims := real
	claims.LastSeq = last + 1
	tests := []struct {
		name       string
		copy       model.Conversation
		cursor     uint64
		wantEvents int
		wantFresh  bool
	}{
		{"copy behind the answer: nothing new, as an earlier poll", real, last + 1, 0, false},
		{"copy with the answer: read from the store", claims, last + 1, added, true},
		{"copy of another visitor: read from the store", other, last + 1, added, true},
		{"cursor past everything: nothing new from the copy", after, after.LastSeq + 1, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs.mu.Lock()
			cs.copies[id] = tc.copy
			cs.mu.Unlock()
			before := cs.freshReads()
			evs := h.poll("vq", sid, strconv.FormatUint(tc.cursor, 10))
			if len(evs) != tc.wantEvents {
				t.Fatalf("poll from %d = %v, want %d events", tc.cursor, evs, tc.wantEvents)
			}
			if read := cs.freshReads() > before; read != tc.wantFresh {
				t.Fatalf("read the store: %v, want %v", read, tc.wantFresh)
			}
		})
	}
}
