package postgres

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestPostStatement: a post's commit (one conversation at the revision
// read, its events, idempotency keys and visitor checks) is one statement
// (postSQL, of the batch's shape) that keeps each rule of the statements it replaces: a stale
// conversation or visitor fails with ErrStale and a repeated key with
// ErrConflict, writing nothing; a batch of another shape takes the
// statements one by one.
func TestPostStatement(t *testing.T) {
	var stmts atomic.Int64
	s := open(t, Options{OnCommit: func(st Stats) {
		if st.Err == nil {
			stmts.Store(int64(st.Statements))
		}
	}})
	ctx := t.Context()
	now := time.Now().UTC()
	v := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: now}
	c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: now}
	other := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: now}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c, other}}); err != nil {
		t.Fatal(err)
	}
	msg := func(conv model.ConvID, seq uint64) model.Event {
		return model.Event{ID: model.NewID(), Conv: conv, Seq: seq, Kind: model.KindMessage, Text: "hi", At: now}
	}
	// post builds the commit of message seq read at revision rev.
	post := func(rev, seq uint64, key string, expect uint64) *store.Batch {
		cv := c
		cv.Rev, cv.LastSeq = rev, seq
		return &store.Batch{Convs: []model.Conversation{cv}, Events: []model.Event{msg(c.ID, seq)},
			Idems:  []store.Idem{{System: "test", Key: key, Conv: c.ID, Seq: seq}},
			Expect: []store.Expect{{Visitor: v.ID, Rev: expect}}}
	}
	tests := []struct {
		name      string
		batch     *store.Batch
		want      error
		wantRev   uint64 // the conversation's revision after
		wantEvs   int    // its events after
		wantStmts int64  // statements of the last successful commit
	}{
		{"post", post(1, 1, "k1", 1), nil, 2, 1, 1},
		{"two events", func() *store.Batch {
			b := post(2, 2, "k2", 1)
			b.Events = append(b.Events, msg(c.ID, 3))
			return b
		}(), nil, 3, 3, 1},
		{"stale conversation", post(1, 4, "k3", 1), store.ErrStale, 3, 3, 1},
		{"stale visitor", post(3, 4, "k3", 7), store.ErrStale, 3, 3, 1},
		{"repeated key", post(3, 4, "k1", 1), store.ErrConflict, 3, 3, 1},
		{"event taken", func() *store.Batch {
			b := post(3, 3, "k4", 1) // seq 3 exists: the rule of (conv, seq)
			return b
		}(), store.ErrConflict, 3, 3, 1},
		{"no key, no check", func() *store.Batch {
			b := post(3, 4, "", 0)
			b.Idems, b.Expect = nil, nil
			return b
		}(), nil, 4, 4, 1},
		{"two keys, two checks", func() *store.Batch {
			b := post(4, 5, "k6", 1)
			b.Idems = append(b.Idems, store.Idem{System: "test", Key: "k7", Conv: c.ID, Seq: 5})
			b.Expect = append(b.Expect, store.Expect{Visitor: v.ID, Rev: 1})
			return b
		}(), nil, 5, 5, 1},
		{"stale visitor among two checks", func() *store.Batch {
			b := post(5, 6, "k8", 1)
			b.Expect = append(b.Expect, store.Expect{Visitor: v.ID, Rev: 9})
			return b
		}(), store.ErrStale, 5, 5, 1},
		{"repeated key among two", func() *store.Batch {
			b := post(5, 6, "k8", 1)
			b.Idems = append(b.Idems, store.Idem{System: "test", Key: "k7", Conv: c.ID, Seq: 6})
			return b
		}(), store.ErrConflict, 5, 5, 1},
		{"no event, a key", func() *store.Batch {
			b := post(5, 5, "k9", 0)
			b.Events, b.Expect = nil, nil
			return b
		}(), nil, 6, 5, 1},
		{"an event of another conversation: one statement each", func() *store.Batch {
			b := post(6, 6, "k5", 1)
			b.Events = append(b.Events, msg(other.ID, 1))
			return b
		}(), nil, 7, 6, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Commit(ctx, tc.batch)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Commit = %v, want %v", err, tc.want)
			}
			got, err := s.Conversation(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := s.Events(ctx, c.ID, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rev != tc.wantRev || len(evs) != tc.wantEvs {
				t.Fatalf("after: revision %d with %d events, want %d with %d", got.Rev, len(evs), tc.wantRev, tc.wantEvs)
			}
			for i, e := range evs {
				if e.Seq != uint64(i+1) {
					t.Fatalf("event %d has seq %d", i, e.Seq)
				}
			}
			if n := stmts.Load(); n != tc.wantStmts {
				t.Fatalf("last commit ran %d statements, want %d", n, tc.wantStmts)
			}
			if tc.want == nil && tc.batch.Convs[0].Rev != tc.wantRev {
				t.Fatalf("Commit set Rev %d, want %d", tc.batch.Convs[0].Rev, tc.wantRev)
			}
		})
	}
	for _, key := range []string{"k1", "k2", "k5", "k6", "k7", "k9"} {
		if _, err := s.Idempotent(ctx, "test", key); err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
	}
	for _, key := range []string{"k3", "k8"} {
		if _, err := s.Idempotent(ctx, "test", key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("key %s of a failed commit: %v", key, err)
		}
	}
}

// TestPostShapes: the server accepts the statement of every shape of post
// (none, one or several events, keys and visitor checks), and each shape
// has its own.
func TestPostShapes(t *testing.T) {
	s := open(t, Options{})
	conn, err := s.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	seen := map[string]bool{}
	for e := range 3 {
		for k := range 3 {
			for c := range 3 {
				sql := postSQL(e, k, c)
				if seen[sql] {
					t.Fatalf("shape %d/%d/%d shares its statement", e, k, c)
				}
				seen[sql] = true
				if _, err := conn.Conn().Prepare(t.Context(), "", sql); err != nil {
					t.Fatalf("shape %d/%d/%d: %v\n%s", e, k, c, err, sql)
				}
			}
		}
	}
}
