package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// TestCommitsWaitForGroupInFlight: with the default options, commits that
// arrive while a group is in flight are not sent at once by other writers
// in small transactions of their own: they wait, and go together in the
// next group (one transaction for all of them); a group of ParallelMin
// goes beside the one in flight. An uploaded file does not
// wait behind a group (PutBlob has its own transaction). The group in
// flight is held by a row lock another session takes on its conversation.
func TestCommitsWaitForGroupInFlight(t *testing.T) {
	var mu sync.Mutex
	var txs []int // requests per transaction, in commit order
	s := open(t, Options{OnCommit: func(st Stats) {
		mu.Lock()
		txs = append(txs, st.Requests)
		mu.Unlock()
	}})
	defer s.Close()
	ctx := t.Context()

	const queued = 8
	now := time.Now().UTC()
	v := model.Visitor{ID: model.VisitorID(model.NewID()), CreatedAt: now}
	convs := make([]model.Conversation, 1+queued)
	for i := range convs {
		convs[i] = model.Conversation{ID: model.ConvID(model.NewID()), Visitor: v.ID, State: model.StateOpen, CreatedAt: now}
	}
	if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}, Convs: convs}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	txs = nil
	mu.Unlock()
	post := func(c model.Conversation) error {
		c.LastSeq = 1
		return s.Commit(ctx, &store.Batch{Convs: []model.Conversation{c},
			Events: []model.Event{{ID: model.NewID(), Conv: c.ID, Seq: 1, Kind: model.KindMessage, Text: "hi", At: now}}})
	}

	// Another session holds convs[0]'s row: the group posting to it
	// waits in the server.
	lock, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback(context.Background()) }()
	var holder int32
	if err := lock.QueryRow(ctx, `SELECT pg_backend_pid() FROM convs WHERE id = $1 FOR UPDATE`, string(convs[0].ID)).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1+queued)
	go func() { errs <- post(convs[0]) }()
	waitFor(t, "the first group to wait for the row lock", func() bool {
		var n int
		err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, holder).Scan(&n)
		return err == nil && n > 0
	})
	for _, c := range convs[1:] {
		go func() { errs <- post(c) }()
	}
	waitFor(t, fmt.Sprintf("%d commits to queue behind the group in flight", queued), func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(txs) > 0 {
			t.Fatalf("transactions %v committed while the first group waited: commits did not wait for it", txs)
		}
		return s.reqs.Len()+int(s.waiting.Load()) == queued
	})

	// A file is stored meanwhile.
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = s.PutBlob(bctx, model.NewID(), []byte(`{}`), []byte("body"))
	cancel()
	if err != nil {
		t.Fatalf("PutBlob behind a group in flight: %v", err)
	}

	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 1 + queued {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(txs) != fmt.Sprint([]int{1, queued}) {
		t.Fatalf("commits per transaction %v, want [1 %d]", txs, queued)
	}
}
