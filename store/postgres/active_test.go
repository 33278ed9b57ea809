package postgres

import (
	"slices"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestActiveBySourceAcrossNodes: conversations committed through two
// nodes' stores are counted together, by origin and owner, active ones
// only; a close committed on one node is seen by the other's count.
func TestActiveBySourceAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	now := time.Now().UTC()
	conv := func(origin, owner string, state model.State) model.Conversation {
		id := model.ConvID(model.NewID())
		return model.Conversation{ID: id, Visitor: model.VisitorID("v-" + string(id)), State: state, Origin: origin,
			Owner: owner, CreatedAt: now}
	}
	commit := func(s *Store, convs ...model.Conversation) {
		t.Helper()
		if err := s.Commit(ctx, &store.Batch{Convs: convs}); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	relayed := conv("livechat.v2", "desk-rc", model.StateOpen)
	commit(a, conv("livechat.v2", "", model.StateQueued), conv("livechat.v2", "", model.StateOpen), relayed)
	commit(b, conv("rocketchat", "", model.StateOpen), conv("rocketchat", "", model.StateClosed))
	want := []store.SourceCount{{Origin: "livechat.v2", Active: 2}, {Origin: "livechat.v2", Owner: "desk-rc", Active: 1},
		{Origin: "rocketchat", Active: 1}}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		got, err := s.ActiveBySource(ctx)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("node %s: ActiveBySource = %+v, %v; want %+v", name, got, err, want)
		}
	}
	// Closed through b, committed over a's write (its revision).
	stored, err := b.Conversation(ctx, relayed.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.State = model.StateClosed
	commit(b, stored)
	got, err := a.ActiveBySource(ctx)
	want = slices.Delete(want, 1, 2)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("after a close on b, node a counts %+v, %v; want %+v", got, err, want)
	}
}
