package rocketchat

import (
	"context"
	"sync/atomic"
	"testing"

	"chatgate/core/model"
	"chatgate/store"
)

// convReads counts the store's conversation reads.
type convReads struct {
	store.Store
	n atomic.Int32
}

func (c *convReads) Conversation(ctx context.Context, id model.ConvID) (model.Conversation, error) {
	c.n.Add(1)
	return c.Store.Conversation(ctx, id)
}

// TestRESTSendReadsRoomOnce: POST livechat/message reads the room once, to
// find and check it; the desk commits on that copy (desk.PostRead) instead
// of reading it again. A copy gone stale since (a message committed in
// between by anyone) still commits at the right place: the stale commit
// is retried on the store's copy (core/desk TestPostRead).
func TestRESTSendReadsRoomOnce(t *testing.T) {
	var reads *convReads
	h := newRHStore(t, func(st store.Store) store.Store { reads = &convReads{Store: st}; return reads })
	h.online("ann@x")
	h.visitor("tok-once", "Olga")
	rid := h.room("tok-once")
	h.send("tok-once", rid, "warm") // fills this node's caches
	for i, text := range []string{"one", "two"} {
		reads.n.Store(0)
		m := h.send("tok-once", rid, text)
		if m["msg"] != text || m["rid"] != rid {
			t.Fatalf("send %d: %v", i, m)
		}
		if n := reads.n.Load(); n != 1 {
			t.Errorf("send %d: %d conversation reads, want 1", i, n)
		}
	}
	hist := h.history("tok-once", rid)
	if len(hist) < 3 || hist[0]["msg"] != "two" || hist[1]["msg"] != "one" || hist[2]["msg"] != "warm" {
		t.Errorf("history %v", hist)
	}
}
