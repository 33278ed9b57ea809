package bolt

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// BenchmarkCommit measures durable (fsync'd) commits of one message each:
// the conversation record with its new LastSeq, the event and the
// idempotency key, from 1, 16 and 128 concurrent writers, each on its own
// conversation. b.N is the total number of commits. keys/s counts the keys
// the writer put (Stats.Keys): 2 per commit (the event and the idempotency
// key), since a message leaves its unchanged conversation record and
// visitor index entry alone (layout 2, see fileSchema); it was 4.
func BenchmarkCommit(b *testing.B) {
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchCommit(b, writers, 0)
		})
	}
}

// BenchmarkCommitOutbox is BenchmarkCommit with outbox rows (webhook
// deliveries of about 600 bytes) in every commit.
func BenchmarkCommitOutbox(b *testing.B) {
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d/rows=2", writers), func(b *testing.B) {
			benchCommit(b, writers, 2)
		})
	}
}

func benchCommit(b *testing.B, writers, outbox int) {
	var keys, txns atomic.Int64
	s, err := Open(tempPath(b), Options{NoSync: false, OnCommit: func(st Stats) {
		keys.Add(int64(st.Keys))
		txns.Add(1)
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	visitor := model.VisitorID(model.NewID())
	text := "Hello, I would like to know more about the pricing of the pro plan, thanks!"
	at := time.Now().UTC()

	var next atomic.Int64 // commits handed out so far
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	keys.Store(0)
	txns.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			conv := model.Conversation{
				ID: model.ConvID(model.NewID()), Visitor: visitor, State: model.StateOpen,
				Agent: "agent-1", Origin: "bench", CreatedAt: at,
			}
			author := model.Author{Kind: model.AuthorVisitor, ID: string(visitor), Name: "Vera"}
			for next.Add(1) <= int64(b.N) {
				seq := conv.LastSeq + 1
				conv.LastSeq = seq
				var rows []store.OutboxRow
				for i := range outbox {
					rows = append(rows, store.OutboxRow{ID: model.NewID(), Target: "hook-" + strconv.Itoa(i), Conv: conv.ID,
						Payload: benchPayload, CreatedAt: at, NextAt: at})
				}
				err := s.Commit(ctx, &store.Batch{
					Outbox: rows,
					Convs:  []model.Conversation{conv},
					Events: []model.Event{{
						Conv: conv.ID, Seq: seq, ID: model.NewID(), Kind: model.KindMessage,
						Author: author, At: at, Text: text,
					}},
					Idems: []store.Idem{{System: "bench", Key: string(conv.ID) + "/" + strconv.FormatUint(seq, 10), Conv: conv.ID, Seq: seq}},
				})
				if err != nil {
					err = fmt.Errorf("writer %d: %w", w, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	sec := b.Elapsed().Seconds()
	if sec > 0 {
		b.ReportMetric(float64(keys.Load())/sec, "keys/s")
		b.ReportMetric(float64(b.N)/sec, "commits/s")
	}
	if t := txns.Load(); t > 0 {
		b.ReportMetric(float64(b.N)/float64(t), "commits/txn")
	}
}

var benchPayload = []byte(`{"webhook_id":"92fc69a091cadceba9679aef68582f56","action":"incoming_event","chat_id":"01JX8Y3M4N5P6Q7R8S9T0V1W2X",` +
	`"payload":{"chat_id":"01JX8Y3M4N5P6Q7R8S9T0V1W2X","thread_id":"01JX8Y3M4N5P6Q7R8S9T0V1W2Y","event":{"id":"01JX8Y3M4N5P6Q7R8S9T0V1W2Y_12",` +
	`"type":"message","author_id":"01JX8Y3M4N5P6Q7R8S9T0V1W2X","created_at":"2025-06-01T12:00:00.000000Z","visibility":"all",` +
	`"text":"Hello, I would like to know more about the pricing of the pro plan, thanks! Hello, I would like to know more about the pricing."}},` +
	`"additional_data":{}}`)

// BenchmarkOutboxDue reads the due heads while a receiver is down: 10,000
// queues of 20 rows each, half of them waiting for a retry. One op reads
// 64 due queues of up to 64 rows, as the webhook worker does.
func BenchmarkOutboxDue(b *testing.B) {
	s, err := Open(tempPath(b), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	const queues, perQueue = 10000, 20
	for q := 0; q < queues; q += 100 {
		var batch store.Batch
		for i := q; i < q+100; i++ {
			next := at
			if i%2 == 0 {
				next = at.Add(time.Hour)
			}
			for range perQueue {
				batch.Outbox = append(batch.Outbox, store.OutboxRow{ID: model.NewID(), Target: "hook",
					Conv: model.ConvID(fmt.Sprintf("conv-%05d", i)), Payload: benchPayload, CreatedAt: at, NextAt: next})
			}
		}
		if err := s.Commit(ctx, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rows, err := s.OutboxDue(ctx, "", at, 64, 64)
		if err != nil || len(rows) != 64*perQueue {
			b.Fatalf("OutboxDue = %d rows, %v", len(rows), err)
		}
	}
}

// BenchmarkForgetIdleVisitors measures one sweep that deletes one idle
// anonymous visitor from a store holding 200,000 mappings and 10,000
// visitors with a conversation: the cost is the two scans of the mapping
// bucket inside the write transaction (other commits wait for it), and the
// candidate scan of the visitors outside it. ns/mapping is the sweep's
// time divided by the mappings.
func BenchmarkForgetIdleVisitors(b *testing.B) {
	s, err := Open(b.TempDir()+"/data.db", Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const nMaps, nVisitors = 200_000, 10_000
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < nVisitors; i++ {
		v := model.Visitor{ID: model.VisitorID(fmt.Sprintf("v%07d", i)), CreatedAt: old}
		c := model.Conversation{ID: model.ConvID(fmt.Sprintf("c%07d", i)), Visitor: v.ID, State: model.StateClosed, CreatedAt: old}
		bt := &store.Batch{Visitors: []model.Visitor{v}, Convs: []model.Conversation{c}}
		for j := 0; j < nMaps/nVisitors; j++ {
			bt.Maps = append(bt.Maps, store.Mapping{MapKey: store.MapKey{System: "sys", Tenant: "t", Kind: "event", Foreign: fmt.Sprintf("e%07d-%d", i, j)}, Core: string(c.ID)})
		}
		if err := s.Commit(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		anon := model.Visitor{ID: model.VisitorID(fmt.Sprintf("anon%07d", i)), CreatedAt: old}
		if err := s.Commit(ctx, &store.Batch{Visitors: []model.Visitor{anon},
			Maps: []store.Mapping{{MapKey: store.MapKey{System: "sys", Tenant: "t", Kind: "token", Foreign: "h" + strconv.Itoa(i)}, Core: string(anon.ID)}}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		gone, err := s.ForgetIdleVisitors(ctx, time.Now(), 0)
		if err != nil || len(gone) != 1 {
			b.Fatalf("forgot %v: %v", gone, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nMaps, "ns/mapping")
}
