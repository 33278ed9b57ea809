package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/bolt"
)

// TestDispatcherKeepsQueueOrder: rows of many queues are all delivered,
// each queue's in order and by one deliverer at a time, rows of other
// targets left alone; a retried row holds its queue back.
func TestDispatcherKeepsQueueOrder(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "outbox.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const queues, perQueue = 20, 30
	for q := range queues {
		var rows []store.OutboxRow
		for i := range perQueue {
			rows = append(rows, store.OutboxRow{ID: model.NewID(), Target: "mine/", Conv: model.ConvID(fmt.Sprint("c", q)),
				Payload: []byte(fmt.Sprint(i))})
		}
		rows = append(rows, store.OutboxRow{ID: model.NewID(), Target: "other/", Conv: "c0", Payload: []byte("x")})
		if err := st.Commit(t.Context(), &store.Batch{Outbox: rows}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		got    = map[model.ConvID][]string{}
		busy   = map[model.ConvID]bool{}
		failed = false
	)
	deliver := func(ctx context.Context, rows []store.OutboxRow) {
		c := rows[0].Conv
		mu.Lock()
		if busy[c] {
			t.Errorf("queue %s delivered by two workers at once", c)
		}
		busy[c] = true
		mu.Unlock()
		defer func() { mu.Lock(); busy[c] = false; mu.Unlock() }()
		for _, r := range rows {
			if r.Target != "mine/" {
				t.Errorf("row of target %q handed over", r.Target)
			}
			mu.Lock()
			if c == "c3" && string(r.Payload) == "5" && !failed {
				// One retry: the row stays the head, due again at once.
				failed = true
				mu.Unlock()
				r.Attempts, r.LastError = 1, "away"
				if err := st.OutboxRetry(ctx, r); err != nil {
					t.Error(err)
				}
				return
			}
			got[c] = append(got[c], string(r.Payload))
			mu.Unlock()
			if err := st.OutboxDelivered(ctx, r); err != nil {
				// A commit that outlives the test's last poll may report
				// the dispatcher's cancellation although it was written.
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Dispatcher{Store: st, Prefix: "mine/", Concurrency: 4, PerQueue: 7, PollInterval: 5 * time.Millisecond, Deliver: deliver}.Run(ctx)
	}()
	deadline := time.Now().Add(2 * time.Minute) // a hang guard, not a timing assertion
	for {
		rows, err := st.OutboxDue(t.Context(), "mine/", time.Now().Add(time.Hour), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left undelivered", len(rows))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	want := make([]string, perQueue)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	for q := range queues {
		c := model.ConvID(fmt.Sprint("c", q))
		if !slices.Equal(got[c], want) {
			t.Errorf("queue %s delivered %v", c, got[c])
		}
	}
	if rows, _ := st.OutboxDue(t.Context(), "other/", time.Now().Add(time.Hour), 0, 0); len(rows) != queues {
		t.Errorf("other target's rows: %d left, want %d untouched", len(rows), queues)
	}
}
