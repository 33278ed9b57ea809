package bolt

import (
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// TestOutboxReopen: pending rows, the due index of their heads, retries,
// exhausted rows and the seq counter all survive a reopen.
func TestOutboxReopen(t *testing.T) {
	path := tempPath(t)
	ctx := t.Context()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	conv := model.ConvID(model.NewID())
	row := func(id string) store.OutboxRow {
		return store.OutboxRow{ID: id, Target: "hook", Conv: conv, Payload: []byte(id), CreatedAt: t0, NextAt: t0}
	}
	s := mustOpen(t, path, Options{})
	if err := s.Commit(ctx, &store.Batch{Outbox: []store.OutboxRow{row("a"), row("b"), row("c")}}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.OutboxDue(ctx, "", t0, 0, 0)
	if err != nil || len(rows) != 3 {
		t.Fatalf("OutboxDue = %d rows, %v", len(rows), err)
	}
	a := rows[0]
	a.Attempts, a.NextAt, a.LastError = 3, t0.Add(time.Hour), "HTTP 503"
	if err := s.OutboxExhaust(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := rows[1]
	b.Attempts, b.NextAt, b.LastError = 1, t0.Add(time.Minute), "timeout"
	if err := s.OutboxRetry(ctx, b); err != nil {
		t.Fatal(err)
	}
	lastSeq := rows[2].Seq
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, Options{})
	defer s.Close()
	if rows, err := s.OutboxDue(ctx, "", t0, 0, 0); err != nil || len(rows) != 0 {
		t.Errorf("due at t0 after reopen = %d rows, %v; want none (b waits)", len(rows), err)
	}
	rows, err = s.OutboxDue(ctx, "", t0.Add(time.Minute), 0, 0)
	if err != nil || len(rows) != 2 || rows[0].ID != "b" || rows[0].Attempts != 1 || rows[0].LastError != "timeout" || rows[1].ID != "c" {
		t.Fatalf("due after reopen = %+v, %v", rows, err)
	}
	ex, err := s.OutboxExhausted(ctx, "hook", 0)
	if err != nil || len(ex) != 1 || ex[0].ID != "a" || ex[0].State != store.OutboxExhausted || string(ex[0].Payload) != "a" {
		t.Fatalf("exhausted after reopen = %+v, %v", ex, err)
	}
	if err := s.Commit(ctx, &store.Batch{Outbox: []store.OutboxRow{row("d")}}); err != nil {
		t.Fatal(err)
	}
	rows, _ = s.OutboxDue(ctx, "", t0.Add(time.Minute), 0, 0)
	if len(rows) != 3 || rows[2].ID != "d" || rows[2].Seq <= lastSeq {
		t.Fatalf("row committed after reopen: %+v (last seq before %d)", rows, lastSeq)
	}
	// Exactly one due entry per non-empty queue.
	err = s.db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bOutboxDue).Stats().KeyN; n != 1 {
			t.Errorf("outbox_due has %d keys, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
