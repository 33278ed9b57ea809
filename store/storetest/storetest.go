// Package storetest is the conformance suite every store.Store
// implementation runs, so that backends are drop-in replacements for one
// another. It uses nothing but the store.Store interface.
//
// A backend's test calls Run with a function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite closes every store it opens. Records are compared by their JSON
// encoding, so a backend must round-trip every field (times are given in
// UTC with microsecond precision).
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// Run runs the conformance suite against the stores open returns. open must
// return a new, empty store each time it is called; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Visitors", testVisitors},
		{"Conversations", testConversations},
		{"VisitorConversations", testVisitorConversations},
		{"ConversationChangesVisitor", testConversationChangesVisitor},
		{"EventsRoundTrip", testEventsRoundTrip},
		{"EventsRange", testEventsRange},
		{"EventsPrefixConversations", testEventsPrefix},
		{"Conflicts", testConflicts},
		{"Allowed", testAllowed},
		{"Mappings", testMappings},
		{"Idempotent", testIdempotent},
		{"Meta", testMeta},
		{"NotFound", testNotFound},
		{"EmptyBatch", testEmptyBatch},
		{"InvalidBatch", testInvalidBatch},
		{"CommitAfterClose", testCommitAfterClose},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentCommitters", testConcurrentCommitters},
		{"ConcurrentSameKeys", testConcurrentSameKeys},
		{"ConversationsScan", testConversationsScan},
		{"ConversationsCallbackUsesStore", testConversationsCallback},
		{"VisitorsScan", testVisitorsScan},
		{"EventUpdates", testEventUpdates},
		{"OutboxRoundTrip", testOutboxRoundTrip},
		{"OutboxOrder", testOutboxOrder},
		{"OutboxHeadBlocksQueue", testOutboxHeadBlocks},
		{"OutboxDelivered", testOutboxDelivered},
		{"OutboxExhaust", testOutboxExhaust},
		{"OutboxRevive", testOutboxRevive},
		{"OutboxLimits", testOutboxLimits},
		{"OutboxNotFound", testOutboxNotFound},
		{"OutboxInvalid", testOutboxInvalid},
		{"OutboxConcurrent", testOutboxConcurrent},
		{"OutboxAfterClose", testOutboxAfterClose},
		{"SnapshotRestore", testSnapshotRestore},
		{"SnapshotConsistent", testSnapshotConsistent},
		{"RestoreInvalid", testRestoreInvalid},
		{"Revisions", testRevisions},
		{"RevisionRace", testRevisionRace},
		{"RevisionHammer", testRevisionHammer},
		{"OddKeys", testOddKeys},
		{"VisitorRevisions", testVisitorRevisions},
		{"Expect", testExpect},
		{"ForgetIdleVisitors", testForgetIdleVisitors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// --- helpers ---------------------------------------------------------------

// onceCloser makes Close idempotent so that a test may close the store
// itself and the cleanup still runs.
type onceCloser struct {
	store.Store
	once sync.Once
	err  error
}

// LatestConversation reaches the store's own (a
// store.LatestConversationStore, e.g. bbolt's cache) when it has one.
func (c *onceCloser) LatestConversation(ctx context.Context, v model.VisitorID) (model.Conversation, error) {
	return store.LatestConversation(ctx, c.Store, v)
}

func (c *onceCloser) Close() error {
	c.once.Do(func() { c.err = c.Store.Close() })
	return c.err
}

// fresh opens a new empty store that is closed when t ends.
func fresh(t *testing.T, open func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	c := &onceCloser{Store: s}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// t0 is the base of every timestamp the suite writes.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func commit(t *testing.T, s store.Store, b *store.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func newVisitor(name string) model.Visitor {
	return model.Visitor{
		ID:        model.VisitorID(model.NewID()),
		Name:      name,
		Email:     name + "@example.com",
		Fields:    map[string]string{"plan": "pro", "lang": "en"},
		CreatedAt: t0,
	}
}

func newConv(v model.VisitorID) model.Conversation {
	return model.Conversation{
		ID:        model.ConvID(model.NewID()),
		Visitor:   v,
		State:     model.StateQueued,
		Origin:    "test",
		CreatedAt: t0,
	}
}

func newEvent(conv model.ConvID, seq uint64) model.Event {
	return model.Event{
		Conv:       conv,
		Seq:        seq,
		ID:         fmt.Sprintf("%s-%d", conv, seq),
		Kind:       model.KindMessage,
		Author:     model.Author{Kind: model.AuthorVisitor, ID: "v", Name: "Vera"},
		At:         t0.Add(time.Duration(seq) * time.Second),
		Visibility: model.VisibleAll,
		Text:       fmt.Sprintf("message %d", seq),
	}
}

// sameJSON fails t unless got and want encode to the same JSON.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: encode got: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("%s: encode want: %v", what, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want store.ErrNotFound", what, err)
	}
}

func seqs(evs []model.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// --- records ---------------------------------------------------------------

func testVisitors(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	a, b := newVisitor("ann"), newVisitor("bob")
	b.Fields = nil
	commit(t, s, &store.Batch{Visitors: []model.Visitor{a, b}})
	for _, want := range []model.Visitor{a, b} {
		got, err := s.Visitor(ctx, want.ID)
		if err != nil {
			t.Fatalf("Visitor(%s): %v", want.ID, err)
		}
		sameJSON(t, "visitor", got, want)
	}
	// Overwrite.
	a.Name, a.Fields = "ann renamed", map[string]string{"plan": "free"}
	commit(t, s, &store.Batch{Visitors: []model.Visitor{a}})
	got, err := s.Visitor(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "overwritten visitor", got, a)
}

func testConversations(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("ann")
	c := newConv(v.ID)
	c.Department = "sales"
	c.Props = map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`{"a":1}`)}}
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}})
	got, err := s.Conversation(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "conversation", got, c)

	// Overwrite is allowed: the conversation record changes with its state.
	steps := []func(c *model.Conversation){
		func(c *model.Conversation) {
			c.State, c.Agent, c.AssignedAt, c.LastSeq = model.StateOpen, "agent-1", t0.Add(time.Minute), 3
		},
		func(c *model.Conversation) {
			by := model.Author{Kind: model.AuthorAgent, ID: "agent-1"}
			c.State, c.ClosedAt, c.ClosedBy, c.LastSeq = model.StateClosed, t0.Add(time.Hour), &by, 7
		},
	}
	for i, step := range steps {
		step(&c)
		commit(t, s, &store.Batch{Convs: []model.Conversation{c}})
		got, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, fmt.Sprintf("conversation after step %d", i), got, c)
	}
	// Overwriting does not list the conversation twice.
	ids, err := s.VisitorConversations(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []model.ConvID{c.ID}) {
		t.Errorf("VisitorConversations = %v, want [%s]", ids, c.ID)
	}
}

func testVisitorConversations(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	ann, bob, nobody := newVisitor("ann"), newVisitor("bob"), newVisitor("nobody")
	// A visitor id that is a prefix of another must not see its
	// conversations.
	pre := newVisitor("pre")
	pre.ID = ann.ID[:len(ann.ID)-1]
	commit(t, s, &store.Batch{Visitors: []model.Visitor{ann, bob, nobody, pre}})

	var annConvs, bobConvs []model.Conversation
	for range 5 {
		annConvs = append(annConvs, newConv(ann.ID))
		bobConvs = append(bobConvs, newConv(bob.ID))
	}
	preConv := newConv(pre.ID)
	// Commit newest first, in separate batches, interleaving visitors: the
	// listing must still be oldest first.
	for i := len(annConvs) - 1; i >= 0; i-- {
		commit(t, s, &store.Batch{Convs: []model.Conversation{annConvs[i]}})
		commit(t, s, &store.Batch{Convs: []model.Conversation{bobConvs[i]}})
	}
	commit(t, s, &store.Batch{Convs: []model.Conversation{preConv}})

	ids := func(cs []model.Conversation) []model.ConvID {
		var out []model.ConvID
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	tests := []struct {
		name string
		v    model.VisitorID
		want []model.ConvID
	}{
		{"ann", ann.ID, ids(annConvs)},
		{"bob", bob.ID, ids(bobConvs)},
		{"prefix of ann", pre.ID, []model.ConvID{preConv.ID}},
		{"no conversations", nobody.ID, nil},
		{"unknown visitor", model.VisitorID(model.NewID()), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.VisitorConversations(ctx, tc.v)
			if err != nil {
				t.Fatalf("VisitorConversations: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("VisitorConversations = %v, want %v", got, tc.want)
			}
		})
	}
}

// testConversationChangesVisitor: a conversation written with another
// Visitor than the stored one (Rocket.Chat's livechat/room.visitor) moves
// from the old visitor's VisitorConversations to the new one's, in the
// same commit as the rest of the batch, in the listing's order (oldest
// first), also as a snapshot reads it; a write with the same visitor, or
// a message, leaves the index as it is; a stale write moves nothing.
func testConversationChangesVisitor(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	ann, bob := newVisitor("ann"), newVisitor("bob")
	commit(t, s, &store.Batch{Visitors: []model.Visitor{ann, bob}})
	bobOld := newConv(bob.ID)
	moved := newConv(ann.ID)
	annOther := newConv(ann.ID)
	bobNew := newConv(bob.ID)
	for _, c := range []model.Conversation{bobOld, moved, annOther, bobNew} {
		commit(t, s, &store.Batch{Convs: []model.Conversation{c}})
	}
	want := func(what string, v model.VisitorID, ids ...model.ConvID) {
		t.Helper()
		got, err := s.VisitorConversations(ctx, v)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("%s: VisitorConversations(%s) = %v, want %v", what, v, got, ids)
		}
		// The newest one, through the store's cache when it keeps one.
		if last, err := store.LatestConversation(ctx, s, v); len(ids) > 0 && (err != nil || last.ID != ids[len(ids)-1] || last.Visitor != v) {
			t.Errorf("%s: LatestConversation(%s) = %s (of %s), %v, want %s", what, v, last.ID, last.Visitor, err, ids[len(ids)-1])
		}
		err = s.Snapshot(ctx, func(r store.Reader) error {
			got, err := r.VisitorConversations(v)
			if err == nil && !slices.Equal(got, ids) {
				t.Errorf("%s: snapshot VisitorConversations(%s) = %v, want %v", what, v, got, ids)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: snapshot: %v", what, err)
		}
	}
	cur, err := s.Conversation(ctx, moved.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A write with the same visitor (and a message) keeps the index.
	cur.State = model.StateOpen
	cur.LastSeq = 1
	commit(t, s, &store.Batch{Convs: []model.Conversation{cur}, Events: []model.Event{newEvent(cur.ID, 1)}})
	want("same visitor", ann.ID, moved.ID, annOther.ID)
	if cur, err = s.Conversation(ctx, moved.ID); err != nil || cur.Rev < 2 {
		t.Fatalf("conversation %+v, %v", cur, err)
	}

	// A stale write moves nothing.
	stale := cur
	stale.Rev--
	stale.Visitor = bob.ID
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{stale}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("stale move = %v, want ErrStale", err)
	}
	want("stale move, ann", ann.ID, moved.ID, annOther.ID)
	want("stale move, bob", bob.ID, bobOld.ID, bobNew.ID)

	cur.Visitor = bob.ID
	commit(t, s, &store.Batch{Convs: []model.Conversation{cur}})
	want("moved, ann", ann.ID, annOther.ID)
	want("moved, bob", bob.ID, bobOld.ID, moved.ID, bobNew.ID)
	got, err := s.Conversation(ctx, moved.ID)
	if err != nil || got.Visitor != bob.ID || got.LastSeq != 1 {
		t.Errorf("moved conversation = %+v, %v", got, err)
	}
	// And back, then a message: still one entry each.
	got.Visitor = ann.ID
	b := &store.Batch{Convs: []model.Conversation{got}}
	commit(t, s, b)
	got = b.Convs[0]
	got.LastSeq = 2
	commit(t, s, &store.Batch{Convs: []model.Conversation{got}, Events: []model.Event{newEvent(got.ID, 2)}})
	want("moved back, ann", ann.ID, moved.ID, annOther.ID)
	want("moved back, bob", bob.ID, bobOld.ID, bobNew.ID)
}

// --- events ----------------------------------------------------------------

func testEventsRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("ann")
	c := newConv(v.ID)
	evs := []model.Event{newEvent(c.ID, 1), newEvent(c.ID, 2), newEvent(c.ID, 3), newEvent(c.ID, 4)}
	evs[1].Kind, evs[1].Text = model.KindFile, ""
	evs[1].File = &model.File{Name: "a.png", URL: "https://x/a.png", ContentType: "image/png", Size: 42, Width: 3, Height: 4}
	evs[2].Kind, evs[2].Text = model.KindForm, ""
	evs[2].Form = &model.Form{ID: "f", Type: "prechat", Fields: []model.FormField{{ID: "q", Type: "name", Label: "Name", Answer: json.RawMessage(`"Ann"`)}}}
	evs[3].Kind, evs[3].Text = model.KindSystem, ""
	evs[3].Author, evs[3].Subtype, evs[3].Vars = model.System, model.SysClosed, map[string]string{"agent": "Bo"}
	evs[3].Visibility, evs[3].ClientKey = model.VisibleAgents, "client-key"
	evs[3].Custom = json.RawMessage(`{"x":[1,2]}`)
	evs[3].Props = map[string]map[string]json.RawMessage{"ns": {"p": json.RawMessage(`true`)}}
	c.LastSeq = 4
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Events: evs})

	got, err := s.Events(ctx, c.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "events", got, evs)
}

func testEventsRange(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	const n = 300 // more than 255, so that seq order is numeric, not textual
	c := newConv(model.VisitorID(model.NewID()))
	other := newConv(c.Visitor)
	// Written in several batches, out of order.
	var later []model.Event
	for seq := uint64(1); seq <= n; seq++ {
		if seq%3 == 0 {
			later = append(later, newEvent(c.ID, seq))
			continue
		}
		commit(t, s, &store.Batch{Events: []model.Event{newEvent(c.ID, seq), newEvent(other.ID, seq)}})
	}
	slices.Reverse(later)
	commit(t, s, &store.Batch{Events: later})

	tests := []struct {
		from  uint64
		limit int
		want  []uint64
	}{
		{0, 0, seqRange(1, n)},
		{1, 0, seqRange(1, n)},
		{0, -1, seqRange(1, n)},
		{0, 1, []uint64{1}},
		{1, 10, seqRange(1, 10)},
		{5, 3, []uint64{5, 6, 7}},
		{255, 3, []uint64{255, 256, 257}},
		{290, 100, seqRange(290, n)},
		{n, 0, []uint64{n}},
		{n + 1, 0, nil},
		{1 << 40, 5, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("from=%d,limit=%d", tc.from, tc.limit), func(t *testing.T) {
			got, err := s.Events(ctx, c.ID, tc.from, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs(got), tc.want) {
				t.Errorf("seqs = %v, want %v", seqs(got), tc.want)
			}
			for _, e := range got {
				if e.Conv != c.ID || e.ID != fmt.Sprintf("%s-%d", c.ID, e.Seq) {
					t.Fatalf("event %d: conv %q id %q, not the one written", e.Seq, e.Conv, e.ID)
				}
			}
		})
	}
	t.Run("unknown conversation", func(t *testing.T) {
		got, err := s.Events(ctx, model.ConvID(model.NewID()), 0, 0)
		if err != nil || len(got) != 0 {
			t.Errorf("Events(unknown) = %d events, %v; want none, nil", len(got), err)
		}
	})
}

func testEventsPrefix(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	base := model.ConvID(model.NewID())
	// Ids where one is a prefix of another, and neighbours in key order.
	convs := []model.ConvID{base, base + "0", base + "A", base[:len(base)-1], base + "AA"}
	want := map[model.ConvID][]uint64{}
	var b store.Batch
	for i, c := range convs {
		for seq := uint64(1); seq <= uint64(i+2); seq++ {
			b.Events = append(b.Events, newEvent(c, seq))
			want[c] = append(want[c], seq)
		}
	}
	commit(t, s, &b)
	for _, c := range convs {
		t.Run(string(c), func(t *testing.T) {
			for _, from := range []uint64{0, 1, 2} {
				got, err := s.Events(ctx, c, from, 0)
				if err != nil {
					t.Fatal(err)
				}
				w := want[c][max(from, 1)-1:]
				if !slices.Equal(seqs(got), w) {
					t.Errorf("from %d: seqs = %v, want %v", from, seqs(got), w)
				}
				for _, e := range got {
					if e.Conv != c {
						t.Errorf("from %d: got an event of %q", from, e.Conv)
					}
				}
			}
		})
	}
}

// --- conflicts -------------------------------------------------------------

// bystanders are records that ride along in a conflicting batch; none of
// them may be written.
type bystanders struct {
	visitor model.Visitor
	conv    model.Conversation
	event   model.Event
	mapping store.Mapping
	idem    store.Idem
	meta    string
	outbox  store.OutboxRow
}

func newBystanders() bystanders {
	v := newVisitor("bystander")
	c := newConv(v.ID)
	c.LastSeq = 1
	id := model.NewID()
	return bystanders{
		visitor: v,
		conv:    c,
		event:   newEvent(c.ID, 1),
		mapping: store.Mapping{MapKey: store.MapKey{System: "sys", Tenant: "t", Kind: "bystander", Foreign: "f-" + id}, Core: "core-" + id},
		idem:    store.Idem{System: "sys", Key: "bystander-" + id, Conv: c.ID, Seq: 1},
		meta:    "bystander-" + id,
		outbox:  newRow("bystander-target", c.ID, "bystander"),
	}
}

func (by *bystanders) addTo(b *store.Batch) {
	b.Visitors = append(b.Visitors, by.visitor)
	b.Convs = append(b.Convs, by.conv)
	b.Events = append(b.Events, by.event)
	b.Maps = append(b.Maps, by.mapping)
	b.Idems = append(b.Idems, by.idem)
	if b.Meta == nil {
		b.Meta = map[string][]byte{}
	}
	b.Meta[by.meta] = []byte("x")
	b.Outbox = append(b.Outbox, by.outbox)
}

func (by *bystanders) wantAbsent(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	_, err := s.Visitor(ctx, by.visitor.ID)
	wantNotFound(t, "bystander visitor", err)
	_, err = s.Conversation(ctx, by.conv.ID)
	wantNotFound(t, "bystander conversation", err)
	if ids, err := s.VisitorConversations(ctx, by.visitor.ID); err != nil || len(ids) != 0 {
		t.Errorf("bystander VisitorConversations = %v, %v; want none", ids, err)
	}
	if evs, err := s.Events(ctx, by.conv.ID, 0, 0); err != nil || len(evs) != 0 {
		t.Errorf("bystander Events = %d events, %v; want none", len(evs), err)
	}
	_, err = s.Resolve(ctx, by.mapping.MapKey)
	wantNotFound(t, "bystander Resolve", err)
	m := by.mapping
	_, err = s.Reverse(ctx, m.System, m.Tenant, m.Kind, m.Core)
	wantNotFound(t, "bystander Reverse", err)
	_, err = s.Idempotent(ctx, by.idem.System, by.idem.Key)
	wantNotFound(t, "bystander Idempotent", err)
	_, err = s.Meta(ctx, by.meta)
	wantNotFound(t, "bystander Meta", err)
	due, err := s.OutboxDue(ctx, "", farFuture, 0, 0)
	if err != nil {
		t.Fatalf("OutboxDue: %v", err)
	}
	for _, r := range due {
		if r.ID == by.outbox.ID {
			t.Errorf("bystander outbox row %s was written", r.ID)
		}
	}
}

func testConflicts(t *testing.T, open func(t *testing.T) store.Store) {
	conv := model.ConvID(model.NewID())
	ev := newEvent(conv, 1)
	idem := store.Idem{System: "sys", Key: "k1", Conv: conv, Seq: 1}
	mk := store.MapKey{System: "sys", Tenant: "t", Kind: "chat", Foreign: "F1"}
	tests := []struct {
		name   string
		setup  *store.Batch // committed first, successfully
		bad    *store.Batch // must fail with ErrConflict
		verify func(t *testing.T, s store.Store)
	}{
		{
			name:  "event (conv,seq) exists",
			setup: &store.Batch{Events: []model.Event{ev}},
			bad: &store.Batch{Events: []model.Event{func() model.Event {
				e := newEvent(conv, 1)
				e.Text = "overwritten"
				return e
			}()}},
			verify: func(t *testing.T, s store.Store) {
				got, err := s.Events(t.Context(), conv, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				sameJSON(t, "events", got, []model.Event{ev})
			},
		},
		{
			name:  "event (conv,seq) exists among new ones",
			setup: &store.Batch{Events: []model.Event{ev}},
			bad:   &store.Batch{Events: []model.Event{newEvent(conv, 2), newEvent(conv, 1), newEvent(conv, 3)}},
			verify: func(t *testing.T, s store.Store) {
				got, err := s.Events(t.Context(), conv, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(seqs(got), []uint64{1}) {
					t.Errorf("seqs = %v, want [1]", seqs(got))
				}
			},
		},
		{
			name: "event (conv,seq) twice in one batch",
			bad:  &store.Batch{Events: []model.Event{newEvent(conv, 1), newEvent(conv, 1)}},
			verify: func(t *testing.T, s store.Store) {
				got, err := s.Events(t.Context(), conv, 0, 0)
				if err != nil || len(got) != 0 {
					t.Errorf("Events = %d events, %v; want none", len(got), err)
				}
			},
		},
		{
			name:  "idempotency key reused",
			setup: &store.Batch{Events: []model.Event{ev}, Idems: []store.Idem{idem}},
			bad: &store.Batch{
				Events: []model.Event{newEvent(conv, 2)},
				Idems:  []store.Idem{{System: "sys", Key: "k1", Conv: conv, Seq: 2}},
			},
			verify: func(t *testing.T, s store.Store) {
				got, err := s.Idempotent(t.Context(), "sys", "k1")
				if err != nil {
					t.Fatal(err)
				}
				sameJSON(t, "idem", got, idem)
				evs, err := s.Events(t.Context(), conv, 0, 0)
				if err != nil || !slices.Equal(seqs(evs), []uint64{1}) {
					t.Errorf("Events seqs = %v, %v; want [1]", seqs(evs), err)
				}
			},
		},
		{
			name: "idempotency key twice in one batch",
			bad: &store.Batch{
				Events: []model.Event{newEvent(conv, 1), newEvent(conv, 2)},
				Idems:  []store.Idem{idem, {System: "sys", Key: "k1", Conv: conv, Seq: 2}},
			},
			verify: func(t *testing.T, s store.Store) {
				_, err := s.Idempotent(t.Context(), "sys", "k1")
				wantNotFound(t, "Idempotent", err)
			},
		},
		{
			name:  "mapping rebound to another core id",
			setup: &store.Batch{Maps: []store.Mapping{{MapKey: mk, Core: "core-1"}}},
			bad:   &store.Batch{Maps: []store.Mapping{{MapKey: mk, Core: "core-2"}}},
			verify: func(t *testing.T, s store.Store) {
				got, err := s.Resolve(t.Context(), mk)
				if err != nil || got != "core-1" {
					t.Errorf("Resolve = %q, %v; want core-1", got, err)
				}
				_, err = s.Reverse(t.Context(), mk.System, mk.Tenant, mk.Kind, "core-2")
				wantNotFound(t, "Reverse(core-2)", err)
			},
		},
		{
			name: "mapping bound to two core ids in one batch",
			bad:  &store.Batch{Maps: []store.Mapping{{MapKey: mk, Core: "core-1"}, {MapKey: mk, Core: "core-2"}}},
			verify: func(t *testing.T, s store.Store) {
				_, err := s.Resolve(t.Context(), mk)
				wantNotFound(t, "Resolve", err)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fresh(t, open)
			if tc.setup != nil {
				commit(t, s, tc.setup)
			}
			by := newBystanders()
			by.addTo(tc.bad)
			err := s.Commit(t.Context(), tc.bad)
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Commit = %v, want store.ErrConflict", err)
			}
			by.wantAbsent(t, s)
			tc.verify(t, s)
			// The store is still usable and the bystanders alone commit.
			var b store.Batch
			by.addTo(&b)
			commit(t, s, &b)
			if _, err := s.Visitor(t.Context(), by.visitor.ID); err != nil {
				t.Errorf("bystander visitor after own commit: %v", err)
			}
		})
	}
}

// testAllowed: overwrites that are not conflicts.
func testAllowed(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	mk := store.MapKey{System: "sys", Tenant: "t", Kind: "chat", Foreign: "F1"}
	m := store.Mapping{MapKey: mk, Core: "core-1"}
	commit(t, s, &store.Batch{Maps: []store.Mapping{m}})
	// The same binding again, alone, twice in a batch, and with other data.
	commit(t, s, &store.Batch{Maps: []store.Mapping{m}})
	commit(t, s, &store.Batch{Maps: []store.Mapping{m, m}})
	v := newVisitor("ann")
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Maps: []store.Mapping{m}})
	if got, err := s.Resolve(ctx, mk); err != nil || got != "core-1" {
		t.Errorf("Resolve = %q, %v; want core-1", got, err)
	}
	if got, err := s.Reverse(ctx, mk.System, mk.Tenant, mk.Kind, "core-1"); err != nil || got != "F1" {
		t.Errorf("Reverse = %q, %v; want F1", got, err)
	}
	// Visitors, conversations and meta may be overwritten in later batches
	// and the same visitor may appear in several batches.
	c := newConv(v.ID)
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Meta: map[string][]byte{"k": []byte("1")}})
	c.LastSeq = 1
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Events: []model.Event{newEvent(c.ID, 1)}, Meta: map[string][]byte{"k": []byte("2")}})
	got, err := s.Conversation(ctx, c.ID)
	if err != nil || got.LastSeq != 1 {
		t.Errorf("Conversation = LastSeq %d, %v; want 1", got.LastSeq, err)
	}
	if mv, err := s.Meta(ctx, "k"); err != nil || string(mv) != "2" {
		t.Errorf("Meta = %q, %v; want 2", mv, err)
	}
}

// --- mappings, idempotency, meta --------------------------------------------

func testMappings(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	k := func(system, tenant, kind, foreign string) store.MapKey {
		return store.MapKey{System: system, Tenant: tenant, Kind: kind, Foreign: foreign}
	}
	// The same foreign id under other systems, tenants and kinds is bound
	// independently.
	maps := []store.Mapping{
		{MapKey: k("livechat.v2", "lic-1", "chat", "F"), Core: "c1"},
		{MapKey: k("livechat.v2", "lic-2", "chat", "F"), Core: "c2"},
		{MapKey: k("livechat.v2", "lic-1", "visitor", "F"), Core: "c3"},
		{MapKey: k("rocketchat", "lic-1", "chat", "F"), Core: "c4"},
		{MapKey: k("rocketchat", "", "chat", "F"), Core: "c5"},
		{MapKey: k("livechat.v2", "lic-1", "chat", "F2"), Core: "c6"},
		{MapKey: k("livechat.v2", "lic-1", "chat", "F2x"), Core: "c7"},
		// One core id bound under two kinds.
		{MapKey: k("livechat.v2", "lic-1", "thread", "T"), Core: "c1"},
	}
	commit(t, s, &store.Batch{Maps: maps[:4]})
	commit(t, s, &store.Batch{Maps: maps[4:]})
	for _, m := range maps {
		t.Run(fmt.Sprintf("%s/%s/%s/%s", m.System, m.Tenant, m.Kind, m.Foreign), func(t *testing.T) {
			got, err := s.Resolve(ctx, m.MapKey)
			if err != nil || got != m.Core {
				t.Errorf("Resolve = %q, %v; want %q", got, err, m.Core)
			}
			rev, err := s.Reverse(ctx, m.System, m.Tenant, m.Kind, m.Core)
			if err != nil || rev != m.Foreign {
				t.Errorf("Reverse = %q, %v; want %q", rev, err, m.Foreign)
			}
		})
	}
	missing := []store.MapKey{
		k("livechat.v2", "lic-3", "chat", "F"),
		k("livechat.v2", "lic-1", "agent", "F"),
		k("other", "lic-1", "chat", "F"),
		k("livechat.v2", "lic-1", "chat", "F3"),
		k("livechat.v2", "lic-1", "chat", "f"), // ids are case sensitive
		k("livechat.v2", "lic", "chat", "F"),
	}
	for _, mk := range missing {
		_, err := s.Resolve(ctx, mk)
		wantNotFound(t, fmt.Sprintf("Resolve(%v)", mk), err)
	}
	_, err := s.Reverse(ctx, "livechat.v2", "lic-2", "chat", "c1")
	wantNotFound(t, "Reverse under another tenant", err)
	_, err = s.Reverse(ctx, "livechat.v2", "lic-1", "visitor", "c1")
	wantNotFound(t, "Reverse under another kind", err)

	// Reverse keeps the latest binding of a core id.
	commit(t, s, &store.Batch{Maps: []store.Mapping{{MapKey: k("livechat.v2", "lic-1", "chat", "F9"), Core: "c1"}}})
	if rev, err := s.Reverse(ctx, "livechat.v2", "lic-1", "chat", "c1"); err != nil || rev != "F9" {
		t.Errorf("Reverse after rebinding core = %q, %v; want F9", rev, err)
	}
	for _, f := range []string{"F", "F9"} {
		if got, err := s.Resolve(ctx, k("livechat.v2", "lic-1", "chat", f)); err != nil || got != "c1" {
			t.Errorf("Resolve(%s) = %q, %v; want c1", f, got, err)
		}
	}
}

func testIdempotent(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c := model.ConvID(model.NewID())
	idems := []store.Idem{
		{System: "rocketchat", Key: "msg-1", Conv: c, Seq: 1},
		{System: "livechat.v3", Key: "msg-1", Conv: c, Seq: 2}, // same key, other system
		{System: "rocketchat", Key: "msg-10", Conv: c, Seq: 300},
		{System: "rocketchat", Key: "k/with:odd chars é", Conv: c + "x", Seq: 1 << 40},
	}
	commit(t, s, &store.Batch{Idems: idems[:2]})
	commit(t, s, &store.Batch{Idems: idems[2:]})
	for _, want := range idems {
		got, err := s.Idempotent(ctx, want.System, want.Key)
		if err != nil {
			t.Errorf("Idempotent(%s, %s): %v", want.System, want.Key, err)
			continue
		}
		sameJSON(t, "idem", got, want)
	}
	_, err := s.Idempotent(ctx, "rocketchat", "msg-2")
	wantNotFound(t, "unknown key", err)
	_, err = s.Idempotent(ctx, "other", "msg-1")
	wantNotFound(t, "key of another system", err)
	_, err = s.Idempotent(ctx, "rocketchat", "msg")
	wantNotFound(t, "prefix of a key", err)
}

func testMeta(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	vals := map[string][]byte{
		"secret":   []byte("s3cr3t"),
		"binary":   {0, 1, 2, 0xff, 0},
		"settings": []byte(`{"a":1}`),
	}
	b := store.Batch{Meta: vals}
	commit(t, s, &b)
	// The store must have copied the values.
	vals["secret"][0] = 'X'
	for k, want := range map[string][]byte{"secret": []byte("s3cr3t"), "binary": {0, 1, 2, 0xff, 0}, "settings": []byte(`{"a":1}`)} {
		got, err := s.Meta(ctx, k)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Meta(%s) = %q, %v; want %q", k, got, err, want)
		}
	}
	commit(t, s, &store.Batch{Meta: map[string][]byte{"secret": []byte("new")}})
	if got, err := s.Meta(ctx, "secret"); err != nil || string(got) != "new" {
		t.Errorf("Meta after overwrite = %q, %v; want new", got, err)
	}
	_, err := s.Meta(ctx, "missing")
	wantNotFound(t, "Meta(missing)", err)
}

func testNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	// Something is stored, so that "not found" is not just "empty".
	v := newVisitor("ann")
	c := newConv(v.ID)
	commit(t, s, &store.Batch{
		Visitors: []model.Visitor{v}, Convs: []model.Conversation{c},
		Maps:  []store.Mapping{{MapKey: store.MapKey{System: "s", Tenant: "t", Kind: "k", Foreign: "f"}, Core: "c"}},
		Idems: []store.Idem{{System: "s", Key: "k", Conv: c.ID, Seq: 1}},
		Meta:  map[string][]byte{"m": []byte("v")},
	})
	tests := []struct {
		name string
		call func() error
	}{
		{"Visitor", func() error { _, err := s.Visitor(ctx, model.VisitorID(model.NewID())); return err }},
		{"Visitor by conversation id", func() error { _, err := s.Visitor(ctx, model.VisitorID(c.ID)); return err }},
		{"Conversation", func() error { _, err := s.Conversation(ctx, model.ConvID(model.NewID())); return err }},
		{"Conversation by visitor id", func() error { _, err := s.Conversation(ctx, model.ConvID(v.ID)); return err }},
		{"Resolve", func() error {
			_, err := s.Resolve(ctx, store.MapKey{System: "s", Tenant: "t", Kind: "k", Foreign: "g"})
			return err
		}},
		{"Reverse", func() error { _, err := s.Reverse(ctx, "s", "t", "k", "d"); return err }},
		{"Idempotent", func() error { _, err := s.Idempotent(ctx, "s", "other"); return err }},
		{"Meta", func() error { _, err := s.Meta(ctx, "other"); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantNotFound(t, tc.name, tc.call()) })
	}
}

func testEmptyBatch(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	for _, b := range []*store.Batch{{}, {Meta: map[string][]byte{}}, {Events: []model.Event{}}, {Outbox: []store.OutboxRow{}}} {
		if err := s.Commit(t.Context(), b); err != nil {
			t.Errorf("Commit(empty) = %v", err)
		}
	}
	n := 0
	if err := s.Conversations(t.Context(), func(model.Conversation) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("empty store has %d conversations", n)
	}
}

// testInvalidBatch: records without their keys are refused, and nothing of
// the batch is written.
func testInvalidBatch(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	conv := model.ConvID(model.NewID())
	tests := []struct {
		name string
		b    store.Batch
	}{
		{"visitor without id", store.Batch{Visitors: []model.Visitor{{Name: "x"}}}},
		{"conversation without id", store.Batch{Convs: []model.Conversation{{Visitor: "v"}}}},
		{"event without conversation", store.Batch{Events: []model.Event{{Seq: 1}}}},
		{"event with seq 0", store.Batch{Events: []model.Event{{Conv: conv}}}},
		{"mapping without foreign id", store.Batch{Maps: []store.Mapping{{MapKey: store.MapKey{System: "s", Kind: "k"}, Core: "c"}}}},
		{"mapping without core id", store.Batch{Maps: []store.Mapping{{MapKey: store.MapKey{System: "s", Kind: "k", Foreign: "f"}}}}},
		{"idempotency without key", store.Batch{Idems: []store.Idem{{System: "s", Conv: conv, Seq: 1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			by := newBystanders()
			by.addTo(&tc.b)
			if err := s.Commit(t.Context(), &tc.b); err == nil {
				t.Fatal("Commit accepted an invalid batch")
			}
			by.wantAbsent(t, s)
		})
	}
}

func testCommitAfterClose(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	commit(t, s, &store.Batch{Visitors: []model.Visitor{newVisitor("ann")}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := s.Commit(t.Context(), &store.Batch{Visitors: []model.Visitor{newVisitor("bob")}})
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit after Close = %v, want store.ErrClosed", err)
	}
}

func testCancelledContext(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	v := newVisitor("ann")
	err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}})
	if err == nil {
		t.Fatal("Commit with a cancelled context returned nil")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Commit = %v, want context.Canceled", err)
	}
	// A commit that was refused before it started writes nothing, not
	// even later: a commit that follows it has been written, and the
	// refused one still is not.
	commit(t, s, &store.Batch{Meta: map[string][]byte{"after-cancel": []byte("1")}})
	_, err = s.Visitor(t.Context(), v.ID)
	wantNotFound(t, "visitor of a cancelled commit", err)

	ctx, cancel = context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Commit with an expired deadline = %v, want context.DeadlineExceeded", err)
	}
}

// --- concurrency -----------------------------------------------------------

func testConcurrentCommitters(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	const writers, perWriter = 64, 50
	v := newVisitor("ann")
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}})
	convs := make([]model.Conversation, writers)
	for i := range convs {
		convs[i] = newConv(v.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			c := convs[w]
			for seq := uint64(1); seq <= perWriter; seq++ {
				c.LastSeq = seq
				err := s.Commit(ctx, &store.Batch{
					Convs:  []model.Conversation{c},
					Events: []model.Event{newEvent(c.ID, seq)},
					Idems:  []store.Idem{{System: "sys", Key: fmt.Sprintf("%s/%d", c.ID, seq), Conv: c.ID, Seq: seq}},
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d seq %d: %w", w, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, c := range convs {
		got, err := s.Conversation(ctx, c.ID)
		if err != nil || got.LastSeq != perWriter {
			t.Errorf("conversation %s: LastSeq %d, %v; want %d", c.ID, got.LastSeq, err, perWriter)
		}
		evs, err := s.Events(ctx, c.ID, 0, 0)
		if err != nil || !slices.Equal(seqs(evs), seqRange(1, perWriter)) {
			t.Errorf("conversation %s: seqs %v, %v", c.ID, seqs(evs), err)
		}
		for seq := uint64(1); seq <= perWriter; seq++ {
			id, err := s.Idempotent(ctx, "sys", fmt.Sprintf("%s/%d", c.ID, seq))
			if err != nil || id.Conv != c.ID || id.Seq != seq {
				t.Errorf("Idempotent(%s/%d) = %+v, %v", c.ID, seq, id, err)
			}
		}
	}
	ids, err := s.VisitorConversations(ctx, v.ID)
	if err != nil || len(ids) != writers {
		t.Errorf("VisitorConversations: %d ids, %v; want %d", len(ids), err, writers)
	}
}

// testConcurrentSameKeys: committers racing for one idempotency key or one
// (conv, seq): exactly one wins, the others get ErrConflict.
func testConcurrentSameKeys(t *testing.T, open func(t *testing.T) store.Store) {
	const racers = 32
	race := func(t *testing.T, s store.Store, batch func(i int) *store.Batch) int {
		t.Helper()
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = s.Commit(t.Context(), batch(i))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("racers %d and %d both won", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("racer %d: %v, want nil or store.ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no racer won")
		}
		return winner
	}

	t.Run("idempotency key", func(t *testing.T) {
		s := fresh(t, open)
		convs := make([]model.ConvID, racers)
		for i := range convs {
			convs[i] = model.ConvID(model.NewID())
		}
		w := race(t, s, func(i int) *store.Batch {
			return &store.Batch{
				Events: []model.Event{newEvent(convs[i], 1)},
				Idems:  []store.Idem{{System: "sys", Key: "same", Conv: convs[i], Seq: 1}},
			}
		})
		id, err := s.Idempotent(t.Context(), "sys", "same")
		if err != nil || id.Conv != convs[w] {
			t.Errorf("Idempotent = %+v, %v; want conv of winner %s", id, err, convs[w])
		}
		for i, c := range convs {
			evs, err := s.Events(t.Context(), c, 0, 0)
			if want := b2i(i == w); err != nil || len(evs) != want {
				t.Errorf("racer %d: %d events, %v; want %d", i, len(evs), err, want)
			}
		}
	})
	t.Run("event seq", func(t *testing.T) {
		s := fresh(t, open)
		conv := model.ConvID(model.NewID())
		w := race(t, s, func(i int) *store.Batch {
			e := newEvent(conv, 1)
			e.ID = fmt.Sprint("racer-", i)
			return &store.Batch{
				Events: []model.Event{e},
				Idems:  []store.Idem{{System: "sys", Key: fmt.Sprint("key-", i), Conv: conv, Seq: 1}},
			}
		})
		evs, err := s.Events(t.Context(), conv, 0, 0)
		if err != nil || len(evs) != 1 || evs[0].ID != fmt.Sprint("racer-", w) {
			t.Errorf("Events = %+v, %v; want the winner's event racer-%d", evs, err, w)
		}
		for i := range racers {
			_, err := s.Idempotent(t.Context(), "sys", fmt.Sprint("key-", i))
			if i == w && err != nil {
				t.Errorf("winner's idempotency key: %v", err)
			}
			if i != w && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("loser %d's idempotency key: %v, want store.ErrNotFound", i, err)
			}
		}
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// --- scans -----------------------------------------------------------------

func testConversationsScan(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	const n = 700 // enough for a backend that reads in pages to turn some
	want := map[model.ConvID]model.Conversation{}
	var b store.Batch
	for i := range n {
		c := newConv(model.VisitorID(model.NewID()))
		c.LastSeq = uint64(i)
		want[c.ID] = c
		b.Convs = append(b.Convs, c)
	}
	commit(t, s, &b)

	t.Run("all", func(t *testing.T) {
		seen := map[model.ConvID]bool{}
		err := s.Conversations(ctx, func(c model.Conversation) bool {
			if seen[c.ID] {
				t.Errorf("conversation %s seen twice", c.ID)
			}
			seen[c.ID] = true
			w, ok := want[c.ID]
			if !ok {
				t.Errorf("unknown conversation %s", c.ID)
			}
			sameJSON(t, "conversation", c, w)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != n {
			t.Errorf("saw %d conversations, want %d", len(seen), n)
		}
	})
	for _, stop := range []int{1, 3, 256, 257, n - 1, n} {
		t.Run(fmt.Sprint("stop after ", stop), func(t *testing.T) {
			calls := 0
			err := s.Conversations(ctx, func(model.Conversation) bool {
				calls++
				return calls < stop
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != stop {
				t.Errorf("fn called %d times, want %d", calls, stop)
			}
		})
	}
}

// testVisitorsScan: a store with the optional store.VisitorLister lists
// every visitor once, those without conversations too, across pages, and
// stops when fn says so.
func testVisitorsScan(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	vl, ok := s.(*onceCloser).Store.(store.VisitorLister)
	if !ok {
		t.Skip("the store does not implement store.VisitorLister")
	}
	ctx := t.Context()
	const n = 300
	want := map[model.VisitorID]bool{}
	var b store.Batch
	for i := range n {
		v := model.Visitor{ID: model.VisitorID(model.NewID()), Name: fmt.Sprint("v", i)}
		want[v.ID] = true
		b.Visitors = append(b.Visitors, v)
	}
	commit(t, s, &b)
	seen := map[model.VisitorID]bool{}
	if err := vl.Visitors(ctx, func(v model.Visitor) bool {
		if seen[v.ID] || !want[v.ID] {
			t.Errorf("visitor %s seen twice or unknown", v.ID)
		}
		seen[v.ID] = true
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("saw %d visitors, want %d", len(seen), n)
	}
	calls := 0
	if err := vl.Visitors(ctx, func(model.Visitor) bool { calls++; return calls < 257 }); err != nil || calls != 257 {
		t.Errorf("stop after 257: %d calls, %v", calls, err)
	}
}

// testConversationsCallback: fn may use the store, reads and commits
// included, while the scan is under way.
func testConversationsCallback(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	const n = 4
	var b store.Batch
	for range n {
		c := newConv(model.VisitorID(model.NewID()))
		c.LastSeq = 1
		b.Convs = append(b.Convs, c)
		b.Events = append(b.Events, newEvent(c.ID, 1))
	}
	commit(t, s, &b)
	// Large values make a file-backed store grow while the scan runs.
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	calls := 0
	err := s.Conversations(ctx, func(c model.Conversation) bool {
		calls++
		if _, err := s.Conversation(ctx, c.ID); err != nil {
			t.Errorf("Conversation inside scan: %v", err)
		}
		if evs, err := s.Events(ctx, c.ID, 0, 0); err != nil || len(evs) != 1 {
			t.Errorf("Events inside scan: %d, %v", len(evs), err)
		}
		c.LastSeq = 2
		err := s.Commit(ctx, &store.Batch{
			Convs:  []model.Conversation{c},
			Events: []model.Event{newEvent(c.ID, 2)},
			Meta:   map[string][]byte{"blob-" + string(c.ID): blob},
		})
		if err != nil {
			t.Errorf("Commit inside scan: %v", err)
		}
		if _, err := s.Conversation(ctx, c.ID); err != nil {
			t.Errorf("Conversation inside scan after commit: %v", err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != n {
		t.Errorf("fn called %d times, want %d", calls, n)
	}
	for _, c := range b.Convs {
		evs, err := s.Events(ctx, c.ID, 0, 0)
		if err != nil || !slices.Equal(seqs(evs), []uint64{1, 2}) {
			t.Errorf("conversation %s: seqs %v, %v; want [1 2]", c.ID, seqs(evs), err)
		}
	}
}

// testEventUpdates: Updates replace an existing event in place; an update of
// a missing event is a conflict and writes nothing of its batch.
func testEventUpdates(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	v := newVisitor("upd")
	c := newConv(v.ID)
	e := newEvent(c.ID, 1)
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Events: []model.Event{e}})

	edited := e
	edited.Text, edited.EditedAt = "edited", t0.Add(time.Hour)
	commit(t, s, &store.Batch{Updates: []model.Event{edited}})
	got, err := s.Events(t.Context(), c.ID, 1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("events after update: %v %v", got, err)
	}
	sameJSON(t, "updated event", got[0], edited)

	missing := newEvent(c.ID, 2)
	other := newVisitor("bystander")
	err = s.Commit(t.Context(), &store.Batch{Updates: []model.Event{missing}, Visitors: []model.Visitor{other}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of a missing event: %v, want ErrConflict", err)
	}
	if _, err := s.Visitor(t.Context(), other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("conflicting batch wrote its visitor: %v", err)
	}
	if got, _ := s.Events(t.Context(), c.ID, 2, 0); len(got) != 0 {
		t.Fatalf("update created an event: %v", got)
	}
}
