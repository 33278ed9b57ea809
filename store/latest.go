package store

import (
	"context"

	"chatgate/core/model"
)

// LatestConversationStore is implemented by stores that answer a
// visitor's newest conversation from an exact cache (store/bolt: kept by
// its one writer, see its latestCache). store/postgres does not: with
// several nodes, a node's cache would miss the conversations other nodes
// start until their notices arrive, and a thread list must not be older
// than what a client was already told. It could be made exact there only
// by reading a per-visitor revision in the same round trip, which is no
// cheaper than the list itself.
type LatestConversationStore interface {
	// LatestConversation returns the last of VisitorConversations(v),
	// read as Conversation reads it, or ErrNotFound when v has none.
	LatestConversation(ctx context.Context, v model.VisitorID) (model.Conversation, error)
}

// LatestConversation returns visitor v's newest conversation (the last
// of its VisitorConversations), or ErrNotFound when it has none: from
// st's cache when st keeps one (LatestConversationStore), otherwise by
// listing and reading.
func LatestConversation(ctx context.Context, st Store, v model.VisitorID) (model.Conversation, error) {
	if l, ok := st.(LatestConversationStore); ok {
		return l.LatestConversation(ctx, v)
	}
	ids, err := st.VisitorConversations(ctx, v)
	if err != nil {
		return model.Conversation{}, err
	}
	if len(ids) == 0 {
		return model.Conversation{}, ErrNotFound
	}
	return st.Conversation(ctx, ids[len(ids)-1])
}
