package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
	"chatgate/store/postgres/pgtest"
)

// BenchmarkCommit measures durable commits of one message each, as the
// desk makes them: the conversation record (checked against its revision),
// the event and the idempotency key, from 1, 16 and 256 concurrent writers,
// each on its own conversation. hold=on is the store's default (the next
// group waits for the one in flight unless it reaches ParallelMin);
// hold=off is round 6's writers, each sending what it finds at once
// (ParallelMin 1), for comparison. b.N is the total number of commits. The
// server is CHATGATE_TEST_PG (`make bench-pg` starts a throwaway one, with
// fsync on).
func BenchmarkCommit(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		for _, hold := range []bool{true, false} {
			name := fmt.Sprintf("writers=%d/hold=on", writers)
			if !hold {
				name = fmt.Sprintf("writers=%d/hold=off", writers)
			}
			b.Run(name, func(b *testing.B) { benchCommit(b, writers, hold) })
		}
	}
}

func benchCommit(b *testing.B, writers int, hold bool) {
	url := pgtest.URL(b)
	var txns atomic.Int64
	opts := Options{Schema: pgtest.Schema(b, url), OnCommit: func(Stats) { txns.Add(1) }}
	if !hold {
		opts.ParallelMin = 1
	}
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	visitor := model.VisitorID(model.NewID())
	text := "Hello, I would like to know more about the pricing of the pro plan, thanks!"
	convs := make([]model.Conversation, writers)
	for i := range convs {
		c := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: visitor, State: model.StateOpen, CreatedAt: time.Now().UTC()}
		bt := &store.Batch{Convs: []model.Conversation{c}}
		if err := s.Commit(ctx, bt); err != nil {
			b.Fatal(err)
		}
		convs[i] = bt.Convs[0]
	}
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	txns.Store(0)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			c := convs[w]
			for next.Add(1) <= int64(b.N) {
				c.LastSeq++
				e := model.Event{Conv: c.ID, Seq: c.LastSeq, ID: model.NewID(), Kind: model.KindMessage,
					Author: model.Author{Kind: model.AuthorVisitor, ID: string(visitor)}, At: time.Now().UTC(), Text: text}
				bt := &store.Batch{Convs: []model.Conversation{c}, Events: []model.Event{e},
					Idems: []store.Idem{{System: "bench", Key: e.ID, Conv: c.ID, Seq: e.Seq}}}
				if err := s.Commit(ctx, bt); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				c = bt.Convs[0]
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "commits/s")
	b.ReportMetric(float64(b.N)/float64(txns.Load()), "commits/txn")
}
