package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"chatgate/core/model"
	"chatgate/store"
)

// testRevisions: a conversation's revision starts at 1, grows by one per
// commit, is returned by every read and written back into the batch; a
// batch built on an older revision fails with ErrStale (not ErrConflict)
// and writes nothing.
func testRevisions(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("rev")
	c := newConv(v.ID)
	b := &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}}
	commit(t, s, b)
	if b.Convs[0].Rev != 1 {
		t.Fatalf("batch revision after the first commit = %d, want 1", b.Convs[0].Rev)
	}
	wantRev := func(what string, want uint64) model.Conversation {
		t.Helper()
		got, err := s.Conversation(ctx, c.ID)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got.Rev != want {
			t.Errorf("%s: Conversation().Rev = %d, want %d", what, got.Rev, want)
		}
		found := false
		if err := s.Conversations(ctx, func(x model.Conversation) bool {
			if x.ID == c.ID {
				found = true
				if x.Rev != want {
					t.Errorf("%s: Conversations() Rev = %d, want %d", what, x.Rev, want)
				}
			}
			return true
		}); err != nil || !found {
			t.Errorf("%s: Conversations: found %v, %v", what, found, err)
		}
		return got
	}
	cur := wantRev("after create", 1)

	// A write at the stored revision commits and moves it on.
	cur.LastSeq = 1
	b = &store.Batch{Convs: []model.Conversation{cur}, Events: []model.Event{newEvent(c.ID, 1)}}
	commit(t, s, b)
	if b.Convs[0].Rev != 2 {
		t.Errorf("batch revision = %d, want 2", b.Convs[0].Rev)
	}
	wantRev("after a checked write", 2)

	// A write built on revision 1 is stale: nothing of its batch is
	// written, bystanders included, and the stored record is unchanged.
	stale := cur // Rev 1
	stale.LastSeq, stale.Agent = 2, "agent-stale"
	bad := &store.Batch{Convs: []model.Conversation{stale}, Events: []model.Event{newEvent(c.ID, 2)},
		Idems: []store.Idem{{System: "sys", Key: "stale-key", Conv: c.ID, Seq: 2}}}
	by := newBystanders()
	by.addTo(bad)
	err := s.Commit(ctx, bad)
	if !errors.Is(err, store.ErrStale) || errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit = %v, want store.ErrStale (and not ErrConflict)", err)
	}
	by.wantAbsent(t, s)
	if got := wantRev("after a stale write", 2); got.Agent != "" || got.LastSeq != 1 {
		t.Errorf("stale write changed the record: agent %q last seq %d", got.Agent, got.LastSeq)
	}
	if evs, err := s.Events(ctx, c.ID, 0, 0); err != nil || !slices.Equal(seqs(evs), []uint64{1}) {
		t.Errorf("events after a stale write: %v, %v; want [1]", seqs(evs), err)
	}
	if _, err := s.Idempotent(ctx, "sys", "stale-key"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("idempotency key of a stale batch: %v, want ErrNotFound", err)
	}

	// Stale wins over the conflict the same batch would also cause (its
	// event seq is taken): the caller must hear "read again".
	stale.LastSeq = 1
	err = s.Commit(ctx, &store.Batch{Convs: []model.Conversation{stale}, Events: []model.Event{newEvent(c.ID, 1)}})
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("stale and conflicting commit = %v, want store.ErrStale", err)
	}

	// A checked write of a conversation that does not exist is stale too.
	ghost := newConv(v.ID)
	ghost.Rev = 3
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{ghost}}); !errors.Is(err, store.ErrStale) {
		t.Errorf("checked write of a missing conversation = %v, want store.ErrStale", err)
	}
	if _, err := s.Conversation(ctx, ghost.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing conversation after a stale write: %v, want ErrNotFound", err)
	}

	// Rev 0 writes whatever is stored, and still counts.
	blind := cur
	blind.Rev = 0
	commit(t, s, &store.Batch{Convs: []model.Conversation{blind}})
	wantRev("after an unconditional write", 3)
}

// testRevisionRace: writers that all read one revision and append the next
// event: exactly one commits, every other one is told ErrStale.
func testRevisionRace(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	c := newConv(model.VisitorID(model.NewID()))
	b := &store.Batch{Convs: []model.Conversation{c}}
	commit(t, s, b)
	base := b.Convs[0]
	const racers = 16
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			mine := base
			mine.LastSeq = 1
			e := newEvent(c.ID, 1)
			e.ID = fmt.Sprint("racer-", i)
			<-start
			errs[i] = s.Commit(ctx, &store.Batch{Convs: []model.Conversation{mine}, Events: []model.Event{e}})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, store.ErrStale):
			t.Errorf("racer %d: %v, want nil or store.ErrStale", i, err)
		}
	}
	if winners != 1 {
		t.Errorf("%d racers committed, want exactly 1", winners)
	}
}

// ReadModifyWrite is how a writer appends to a conversation that others
// write too: read it, build the batch on what was read, commit; on
// ErrStale, read again and rebuild (the desk does the same). build gets the
// conversation as read and returns the batch to commit.
func ReadModifyWrite(ctx context.Context, s store.Store, id model.ConvID, build func(c model.Conversation) *store.Batch) error {
	for {
		c, err := s.Conversation(ctx, id)
		if err != nil {
			return err
		}
		err = s.Commit(ctx, build(c))
		if !errors.Is(err, store.ErrStale) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// HammerOne has writers append to conversations through the stores given
// (one store each, in turn: several stores on one database are several
// nodes), each conversation written by every writer at once, retrying on
// ErrStale; then it checks that every conversation holds dense seqs
// 1..n with each appended event exactly once and LastSeq n. It returns
// how many commits were retried.
func HammerOne(t *testing.T, stores []store.Store, convs, writers, perWriter int) int {
	t.Helper()
	ctx := t.Context()
	ids := make([]model.ConvID, convs)
	for i := range ids {
		c := newConv(model.VisitorID(model.NewID()))
		ids[i] = c.ID
		commit(t, stores[0], &store.Batch{Convs: []model.Conversation{c}})
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		retries int
	)
	errs := make(chan error, writers)
	for w := range writers {
		st := stores[w%len(stores)]
		wg.Go(func() {
			for k := range perWriter {
				id := ids[(w+k)%len(ids)]
				tries := 0
				err := ReadModifyWrite(ctx, st, id, func(c model.Conversation) *store.Batch {
					tries++
					c.LastSeq++
					e := newEvent(c.ID, c.LastSeq)
					e.ID = fmt.Sprintf("w%d-k%d", w, k)
					return &store.Batch{Convs: []model.Conversation{c}, Events: []model.Event{e},
						Idems: []store.Idem{{System: "hammer", Key: e.ID, Conv: c.ID, Seq: c.LastSeq}}}
				})
				mu.Lock()
				retries += tries - 1
				mu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, k, err)
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
	seen := map[string]bool{}
	total := 0
	for _, id := range ids {
		c, err := stores[len(stores)-1].Conversation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := stores[len(stores)-1].Events(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seqs(evs), seqRange(1, uint64(len(evs)))) || c.LastSeq != uint64(len(evs)) {
			t.Errorf("conversation %s: seqs %v, LastSeq %d: want dense 1..n with LastSeq n", id, seqs(evs), c.LastSeq)
		}
		for _, e := range evs {
			if seen[e.ID] {
				t.Errorf("event %s appended twice", e.ID)
			}
			seen[e.ID] = true
			idem, err := stores[0].Idempotent(ctx, "hammer", e.ID)
			if err != nil || idem.Conv != id || idem.Seq != e.Seq {
				t.Errorf("idempotency key %s = %+v, %v; want %s/%d", e.ID, idem, err, id, e.Seq)
			}
		}
		total += len(evs)
	}
	if want := writers * perWriter; total != want {
		t.Errorf("%d events stored, want %d (every acknowledged append)", total, want)
	}
	return retries
}

func testRevisionHammer(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	retries := HammerOne(t, []store.Store{s}, 3, 12, 25)
	t.Logf("%d stale retries", retries)
}

// testOddKeys: client-chosen ids with characters that a SQL or escape layer
// could mangle round-trip as they are, in every keyed record.
func testOddKeys(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	for i, id := range []string{`back\slash`, `\\x41`, `quote'"`, "percent%_", "ünï 𝄞", "sp ace", "semi;--", `{"json":1}`} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			mk := store.MapKey{System: "sys" + id, Tenant: "t" + id, Kind: "k" + id, Foreign: id}
			v := newVisitor("odd")
			v.ID = model.VisitorID("v" + id)
			c := newConv(v.ID)
			c.ID = model.ConvID("c" + id)
			c.LastSeq = 1
			commit(t, s, &store.Batch{
				Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Events: []model.Event{newEvent(c.ID, 1)},
				Maps:  []store.Mapping{{MapKey: mk, Core: "core" + id}},
				Idems: []store.Idem{{System: "sys" + id, Key: id, Conv: c.ID, Seq: 1}},
				Meta:  map[string][]byte{"meta" + id: []byte(id)},
			})
			if got, err := s.Resolve(ctx, mk); err != nil || got != "core"+id {
				t.Errorf("Resolve = %q, %v", got, err)
			}
			if got, err := s.Reverse(ctx, mk.System, mk.Tenant, mk.Kind, "core"+id); err != nil || got != id {
				t.Errorf("Reverse = %q, %v", got, err)
			}
			if got, err := s.Idempotent(ctx, "sys"+id, id); err != nil || got.Conv != c.ID {
				t.Errorf("Idempotent = %+v, %v", got, err)
			}
			if got, err := s.Meta(ctx, "meta"+id); err != nil || string(got) != id {
				t.Errorf("Meta = %q, %v", got, err)
			}
			if got, err := s.Visitor(ctx, v.ID); err != nil || got.ID != v.ID {
				t.Errorf("Visitor = %q, %v", got.ID, err)
			}
			if ids, err := s.VisitorConversations(ctx, v.ID); err != nil || !slices.Equal(ids, []model.ConvID{c.ID}) {
				t.Errorf("VisitorConversations = %v, %v", ids, err)
			}
			if evs, err := s.Events(ctx, c.ID, 0, 0); err != nil || len(evs) != 1 || evs[0].Conv != c.ID {
				t.Errorf("Events = %v, %v", evs, err)
			}
		})
	}
}

// testVisitorRevisions: visitor records follow the conversations' revision
// rule.
func testVisitorRevisions(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("vrev")
	b := &store.Batch{Visitors: []model.Visitor{v}}
	commit(t, s, b)
	if b.Visitors[0].Rev != 1 {
		t.Fatalf("batch revision after the first commit = %d, want 1", b.Visitors[0].Rev)
	}
	read := func() model.Visitor {
		t.Helper()
		got, err := s.Visitor(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	cur := read()
	if cur.Rev != 1 {
		t.Fatalf("Visitor().Rev = %d, want 1", cur.Rev)
	}
	cur.Name = "second"
	commit(t, s, &store.Batch{Visitors: []model.Visitor{cur}})
	stale := cur // Rev 1
	stale.Name = "stale"
	c := newConv(v.ID)
	err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{stale}, Convs: []model.Conversation{c}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("stale visitor write = %v, want store.ErrStale", err)
	}
	if got := read(); got.Name != "second" || got.Rev != 2 {
		t.Errorf("after a stale write: name %q rev %d, want second at 2", got.Name, got.Rev)
	}
	if _, err := s.Conversation(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stale batch's conversation was written: %v", err)
	}
	blind := stale
	blind.Rev = 0
	commit(t, s, &store.Batch{Visitors: []model.Visitor{blind}})
	if got := read(); got.Name != "stale" || got.Rev != 3 {
		t.Errorf("after an unconditional write: name %q rev %d, want stale at 3", got.Name, got.Rev)
	}
}

// testExpect: a batch that relies on a visitor it does not write
// (Batch.Expect) commits only while that visitor is at the expected
// revision; otherwise it fails whole with ErrStale.
func testExpect(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	ctx := t.Context()
	v := newVisitor("vexp")
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}})
	c := newConv(v.ID)
	commit(t, s, &store.Batch{Convs: []model.Conversation{c}, Expect: []store.Expect{{Visitor: v.ID, Rev: 1}}})
	// The visitor moves on to revision 2 (a ban on another node).
	cur, err := s.Visitor(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.Name = "banned"
	commit(t, s, &store.Batch{Visitors: []model.Visitor{cur}})
	c2 := newConv(v.ID)
	err = s.Commit(ctx, &store.Batch{Convs: []model.Conversation{c2}, Expect: []store.Expect{{Visitor: v.ID, Rev: 1}}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("batch expecting an old visitor revision = %v, want store.ErrStale", err)
	}
	if _, err := s.Conversation(ctx, c2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stale batch's conversation was written: %v", err)
	}
	if err := s.Commit(ctx, &store.Batch{Convs: []model.Conversation{c2}, Expect: []store.Expect{{Visitor: "nobody", Rev: 1}}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("batch expecting a missing visitor = %v, want store.ErrStale", err)
	}
	commit(t, s, &store.Batch{Convs: []model.Conversation{c2}, Expect: []store.Expect{{Visitor: v.ID, Rev: 2}}})
}
