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
// the writer put (Stats.Keys): 4 per commit, as the conversation record
// comes with its visitor index entry.
func BenchmarkCommit(b *testing.B) {
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchCommit(b, writers)
		})
	}
}

func benchCommit(b *testing.B, writers int) {
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
				err := s.Commit(ctx, &store.Batch{
					Convs: []model.Conversation{conv},
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
