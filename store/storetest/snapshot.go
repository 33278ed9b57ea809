package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// dumpAll reads every record of s through Snapshot into a Restore, in the
// Reader's order.
func dumpAll(t *testing.T, s store.Store) *store.Restore {
	t.Helper()
	out := &store.Restore{}
	err := s.Snapshot(t.Context(), func(r store.Reader) error {
		if err := r.Visitors(func(v model.Visitor) error { out.Visitors = append(out.Visitors, v); return nil }); err != nil {
			return err
		}
		if err := r.Conversations(func(c model.Conversation) error {
			out.Convs = append(out.Convs, c)
			return r.Events(c.ID, func(e model.Event) error { out.Events = append(out.Events, e); return nil })
		}); err != nil {
			return err
		}
		if err := r.Mappings(func(m store.Mapping, latest bool) error {
			out.Maps = append(out.Maps, store.RestoreMapping{Mapping: m, Latest: latest})
			return nil
		}); err != nil {
			return err
		}
		if err := r.Idems(func(id store.Idem) error { out.Idems = append(out.Idems, id); return nil }); err != nil {
			return err
		}
		if err := r.Meta(func(k string, v []byte) error {
			out.Meta = append(out.Meta, store.MetaValue{Key: k, Value: v})
			return nil
		}); err != nil {
			return err
		}
		return r.Outbox(func(row store.OutboxRow) error { out.Outbox = append(out.Outbox, row); return nil })
	})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return out
}

// seedAll commits one of every kind of record, and returns the visitor
// and a conversation.
func seedAll(t *testing.T, s store.Store) (model.Visitor, model.Conversation) {
	t.Helper()
	v := newVisitor("Vera")
	v.SeenUpTo = map[string]time.Time{string(v.ID): t0}
	c := newConv(v.ID)
	c.LastSeq = 3
	c.Props = map[string]map[string]json.RawMessage{"ns": {"k": json.RawMessage(`"v"`)}}
	mk := func(f string) store.MapKey {
		return store.MapKey{System: "sys", Tenant: "t", Kind: "visitor", Foreign: f}
	}
	commit(t, s, &store.Batch{
		Visitors: []model.Visitor{v}, Convs: []model.Conversation{c},
		Events: []model.Event{newEvent(c.ID, 1), newEvent(c.ID, 2), newEvent(c.ID, 3)},
		// Two foreign ids bound to one core id: the second is its
		// reverse binding.
		Maps:   []store.Mapping{{MapKey: mk("old"), Core: string(v.ID)}},
		Idems:  []store.Idem{{System: "sys", Key: "k1", Conv: c.ID, Seq: 2}},
		Meta:   map[string][]byte{"settings": []byte(`{"a":1}`)},
		Outbox: []store.OutboxRow{newRow("wh:1", c.ID, "a"), newRow("wh:1", c.ID, "b"), newRow("wh:2", c.ID, "c")},
	})
	commit(t, s, &store.Batch{Maps: []store.Mapping{{MapKey: mk("new"), Core: string(v.ID)}}})
	rows, err := s.OutboxDue(t.Context(), "wh:2", time.Now(), 0, 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("outbox due: %v %v", rows, err)
	}
	rows[0].Attempts, rows[0].LastError = 5, "gone"
	if err := s.OutboxExhaust(t.Context(), rows[0]); err != nil {
		t.Fatalf("exhaust: %v", err)
	}
	return v, c
}

func testSnapshotRestore(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := t.Context()
	src := fresh(t, open)
	v, c := seedAll(t, src)
	dump := dumpAll(t, src)
	if len(dump.Visitors) != 1 || len(dump.Convs) != 1 || len(dump.Events) != 3 || len(dump.Maps) != 2 ||
		len(dump.Idems) != 1 || len(dump.Outbox) != 3 {
		t.Fatalf("snapshot read %d visitors, %d convs, %d events, %d maps, %d idems, %d outbox rows",
			len(dump.Visitors), len(dump.Convs), len(dump.Events), len(dump.Maps), len(dump.Idems), len(dump.Outbox))
	}
	latest := 0
	for _, m := range dump.Maps {
		if m.Latest {
			latest++
			if m.Foreign != "new" {
				t.Errorf("latest mapping is %q, want the second binding", m.Foreign)
			}
		}
	}
	if latest != 1 {
		t.Errorf("%d latest mappings, want 1", latest)
	}

	dst := fresh(t, open)
	res, err := dst.Restore(ctx, dump)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	for kind, n := range map[string]int{store.RecVisitor: 1, store.RecConversation: 1, store.RecEvent: 3, store.RecMapping: 2,
		store.RecIdem: 1, store.RecOutbox: 3} {
		if res[kind].Written != n {
			t.Errorf("restore wrote %d %s records, want %d (%+v)", res[kind].Written, kind, n, res)
		}
	}
	sameJSON(t, "dump of the restored store", dumpAll(t, dst), dump)

	// What the store answers is the same through the ordinary reads.
	gotV, err := dst.Visitor(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "visitor", gotV, v)
	convs, err := dst.VisitorConversations(ctx, v.ID)
	if err != nil || len(convs) != 1 || convs[0] != c.ID {
		t.Errorf("visitor conversations %v %v", convs, err)
	}
	if f, err := dst.Reverse(ctx, "sys", "t", "visitor", string(v.ID)); err != nil || f != "new" {
		t.Errorf("reverse = %q %v, want new", f, err)
	}
	if id, err := dst.Idempotent(ctx, "sys", "k1"); err != nil || id.Seq != 2 {
		t.Errorf("idempotent = %+v %v", id, err)
	}
	wantTags(t, "restored due rows", due(t, dst, time.Now(), 0, 0), "a", "b")
	dead, err := dst.OutboxExhausted(ctx, "", 0)
	if err != nil || len(dead) != 1 || dead[0].LastError != "gone" {
		t.Errorf("exhausted %+v %v", dead, err)
	}
	// New rows sort after restored ones.
	commit(t, dst, &store.Batch{Outbox: []store.OutboxRow{newRow("wh:1", c.ID, "d")}})
	wantTags(t, "rows after a new one", queueOf(t, due(t, dst, time.Now(), 0, 0), "wh:1", c.ID), "a", "b", "d")

	// Twice: nothing changes.
	before := dumpAll(t, dst)
	res, err = dst.Restore(ctx, dump)
	if err != nil {
		t.Fatalf("second restore: %v", err)
	}
	for kind, n := range res {
		if n.Written != 0 || n.Replaced != 0 {
			t.Errorf("second restore wrote %s: %+v", kind, n)
		}
	}
	if res[store.RecEvent].Same != 3 {
		t.Errorf("second restore: %+v", res)
	}
	sameJSON(t, "dump after the second restore", dumpAll(t, dst), before)

	// A record the store already holds differently is kept; meta is
	// replaced; a mapping is never rebound.
	other := dump.Convs[0]
	other.State = model.StateClosed
	e := dump.Events[0]
	e.Text = "changed"
	m := dump.Maps[0]
	m.Core = "someone-else"
	res, err = dst.Restore(ctx, &store.Restore{Convs: []model.Conversation{other}, Events: []model.Event{e},
		Maps: []store.RestoreMapping{m}, Meta: []store.MetaValue{{Key: "settings", Value: []byte(`{"a":2}`)}}})
	if err != nil {
		t.Fatalf("restore of changed records: %v", err)
	}
	if res[store.RecConversation].Kept != 1 || res[store.RecEvent].Kept != 1 || res[store.RecMapping].Kept != 1 || res[store.RecMeta].Replaced != 1 {
		t.Errorf("restore of changed records: %+v", res)
	}
	got, err := dst.Conversation(ctx, c.ID)
	if err != nil || got.State != c.State {
		t.Errorf("conversation after a differing restore: %+v %v", got, err)
	}
	if core, err := dst.Resolve(ctx, m.MapKey); err != nil || core != string(v.ID) {
		t.Errorf("mapping rebound to %q %v", core, err)
	}
	if b, err := dst.Meta(ctx, "settings"); err != nil || string(b) != `{"a":2}` {
		t.Errorf("meta %s %v", b, err)
	}
}

func testSnapshotConsistent(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	v := newVisitor("Vera")
	c := newConv(v.ID)
	commit(t, s, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}, Events: []model.Event{newEvent(c.ID, 1)}})
	// A commit made while a snapshot is open (from another goroutine:
	// the snapshot's fn may not commit itself) is not seen by it.
	err := s.Snapshot(t.Context(), func(r store.Reader) error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done <- s.Commit(ctx, &store.Batch{Events: []model.Event{newEvent(c.ID, 2)}})
		}()
		<-done // committed or timed out waiting for the view: either way not seen
		n := 0
		if err := r.Events(c.ID, func(model.Event) error { n++; return nil }); err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("snapshot saw %d events, want the 1 committed before it", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testRestoreInvalid(t *testing.T, open func(t *testing.T) store.Store) {
	s := fresh(t, open)
	for name, r := range map[string]*store.Restore{
		"visitor without id":   {Visitors: []model.Visitor{{Name: "x"}}},
		"event without seq":    {Events: []model.Event{{Conv: "c"}}},
		"mapping without core": {Maps: []store.RestoreMapping{{Mapping: store.Mapping{MapKey: store.MapKey{System: "s", Kind: "k", Foreign: "f"}}}}},
		"schema meta":          {Meta: []store.MetaValue{{Key: "schema", Value: []byte("9")}}},
		"outbox without seq":   {Outbox: []store.OutboxRow{{ID: "i", Target: "t", Conv: "c", State: store.OutboxPending}}},
	} {
		if _, err := s.Restore(t.Context(), r); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
}
