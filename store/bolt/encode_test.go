package bolt

import (
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestEncodeMessageAllocations holds the committer's share of a message
// (encode of one event on a conversation the cache holds unchanged, as a
// Post commits it) to its allocations: the request, which holds the
// batch's ops, keys and conversation copy (inlineOps), and the event
// record. Every allocation per message brings the next collection
// closer, and each collection shrinks the stacks of the goroutines
// waiting for their next message, which grow them back
// (docs/performance.md, "Round 6: the shared path"); the encoding that
// made one allocation per slice, key and copy made 14 here (the request included).
func TestEncodeMessageAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	s := mustOpen(t, tempPath(t), Options{NoSync: true})
	defer s.Close()
	ctx := t.Context()
	conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: model.VisitorID(model.NewID()), State: model.StateOpen}
	b := &store.Batch{Convs: []model.Conversation{conv}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	conv = b.Convs[0]
	conv.LastSeq++
	// As the desk makes a message: ULID ids, a UTC time.
	ev := model.Event{Conv: conv.ID, Seq: conv.LastSeq, ID: model.NewID(), Kind: model.KindMessage,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(conv.Visitor)}, At: time.Now().UTC(),
		Visibility: model.VisibleAll, Text: "hello"}
	msg := &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{ev},
		Expect: []store.Expect{{Visitor: conv.Visitor, Rev: 1}}}
	var r *request
	got := testing.AllocsPerRun(100, func() {
		r = new(request)
		if err := encode(&r.ops, &r.inline, msg, s.convs); err != nil {
			t.Fatal(err)
		}
	})
	if r.ops.convs[0].cachedRev == 0 {
		t.Fatal("the message did not find its conversation in the cache")
	}
	// The request and the event record (eventVal: one buffer).
	if want := 2.0; got > want {
		t.Errorf("encode of a message: %v allocations, want at most %v", got, want)
	}
}
