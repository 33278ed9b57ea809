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

func TestTmpExp(t *testing.T) {
	for _, o := range []Options{{}, {NoSync: true}} {
		var dur, n, keys atomic.Int64
		o.OnCommit = func(st Stats) { dur.Add(int64(st.Duration)); n.Add(1); keys.Add(int64(st.Keys)) }
		s, _ := Open(tempPath(t), o)
		const writers, per = 128, 80
		var wg sync.WaitGroup
		start := time.Now()
		before := s.db.Stats()
		for range writers {
			wg.Go(func() {
				conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: "v", State: model.StateOpen}
				for seq := uint64(1); seq <= per; seq++ {
					conv.LastSeq = seq
					if err := s.Commit(context.Background(), &store.Batch{Convs: []model.Conversation{conv},
						Events: []model.Event{{Conv: conv.ID, Seq: seq, ID: model.NewID(), Kind: model.KindMessage, Text: "Hello, I would like to know more about the pricing of the pro plan, thanks!"}},
						Idems:  []store.Idem{{System: "bench", Key: string(conv.ID) + "/" + strconv.FormatUint(seq, 10), Conv: conv.ID, Seq: seq}}}); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		after := s.db.Stats(); st := after.Sub(&before)
		tx := st.TxStats
		t.Logf("nosync=%v %v commits/s %.0f keys/s %.0f; txns %d avg dur %v keys/txn %d; pages written/txn %d, writeTime/txn %v spill/txn %v rebalance %v, pageAlloc %d",
			o.NoSync, el, float64(writers*per)/el.Seconds(), float64(keys.Load())/el.Seconds(), n.Load(), time.Duration(dur.Load()/max(n.Load(), 1)), keys.Load()/max(n.Load(), 1),
			tx.GetWrite()/n.Load(), tx.GetWriteTime()/time.Duration(n.Load()), tx.GetSpillTime()/time.Duration(n.Load()), tx.GetRebalanceTime(), tx.GetPageAlloc()/n.Load())
		s.Close()
		fmt.Sprint()
	}
}
