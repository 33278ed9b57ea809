package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chatgate/core/model"
	"chatgate/store"
)

// BenchmarkEcho is the commit side of `chatgate bench`'s in-store and raw
// durable echoes without the websockets: 100 writers, each committing one
// short message at a time (fsync on), each on its own conversation. "raw"
// is bbolt used directly as the raw durable echo uses it (one group-commit
// writer, a 16-byte key connection ‖ message number, the message as
// value); "store" commits the conversation and its next event through
// Store.Commit as the in-store echo (and a Post) does. Besides commits/s
// it reports the process's CPU µs per commit and the B-tree pages bbolt
// wrote per transaction (TxStats), which depend less on the machine's
// other load than the rate does.
func BenchmarkEcho(b *testing.B) {
	const writers = 100
	b.Run("raw", func(b *testing.B) { benchEchoRaw(b, writers) })
	for _, mode := range []string{"store", "post"} {
		b.Run(mode, func(b *testing.B) { benchEchoStore(b, writers, mode == "post") })
	}
}

// benchEchoRaw is BenchmarkEcho on bbolt alone, as the raw durable echo.
func benchEchoRaw(b *testing.B, writers int) {
	{
		db, err := bbolt.Open(tempPath(b), 0o600, &bbolt.Options{Timeout: 2 * time.Second, FreelistType: bbolt.FreelistMapType})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		bucket := []byte("echo")
		if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
			b.Fatal(err)
		}
		type put struct {
			key, val []byte
			errc     chan error
		}
		reqs := make(chan put, 8192)
		var txns atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			group := make([]put, 0, 1024)
			for first := range reqs {
				group = append(group[:0], first)
			drain:
				for len(group) < cap(group) {
					select {
					case p, ok := <-reqs:
						if !ok {
							break drain
						}
						group = append(group, p)
					default:
						break drain
					}
				}
				err := db.Update(func(tx *bbolt.Tx) error {
					bk := tx.Bucket(bucket)
					for _, p := range group {
						if err := bk.Put(p.key, p.val); err != nil {
							return err
						}
					}
					return nil
				})
				txns.Add(1)
				for _, p := range group {
					p.errc <- err
				}
			}
		}()
		runEcho(b, writers, db, &txns, func(w int) func(ctx context.Context, text string) error {
			errc := make(chan error, 1)
			var n uint64
			return func(ctx context.Context, text string) error {
				n++
				key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(w)), n)
				reqs <- put{key: key, val: []byte(text), errc: errc}
				return <-errc
			}
		})
		close(reqs)
		<-done
	}
}

// benchEchoStore is BenchmarkEcho through the store: as the bench's
// in-store echo (each message written unconditionally) or, with post, as
// the desk's Post (written at the revision the last commit returned).
func benchEchoStore(b *testing.B, writers int, post bool) {
	{
		var txns atomic.Int64
		s, err := Open(tempPath(b), Options{OnCommit: func(Stats) { txns.Add(1) }})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		runEcho(b, writers, s.db, &txns, func(int) func(ctx context.Context, text string) error {
			at := time.Now().UTC()
			visitor := model.VisitorID(model.NewID())
			conv := model.Conversation{ID: model.ConvID(model.NewID()), Visitor: visitor, State: model.StateOpen,
				Agent: "agent-1", Origin: "bench", CreatedAt: at}
			author := model.Author{Kind: model.AuthorVisitor, ID: string(visitor), Name: "Vera"}
			return func(ctx context.Context, text string) error {
				conv.LastSeq++
				batch := &store.Batch{Convs: []model.Conversation{conv}, Events: []model.Event{{
					Conv: conv.ID, Seq: conv.LastSeq, ID: model.NewID(), Kind: model.KindMessage, Author: author, At: at, Text: text}}}
				err := s.Commit(ctx, batch)
				if post {
					conv.Rev = batch.Convs[0].Rev
				}
				return err
			}
		})
	}
}

// runEcho runs b.N commits of newCommit's committers from writers
// goroutines and reports their rate, CPU and pages per transaction.
func runEcho(b *testing.B, writers int, db *bbolt.DB, txns *atomic.Int64, newCommit func(w int) func(context.Context, string) error) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	pages0, txns0 := writtenPages(db), txns.Load()
	cpu0 := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for w := range writers {
		commit := newCommit(w)
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				text := fmt.Sprintf("bench|%d|%d|%d", w, n, time.Now().UnixNano())
				if err := commit(ctx, text); err != nil {
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
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
	if t := txns.Load() - txns0; t > 0 {
		b.ReportMetric(float64(writtenPages(db)-pages0)/float64(t), "pages/txn")
		b.ReportMetric(float64(b.N)/float64(t), "commits/txn")
	}
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writtenPages is how many pages bbolt's writes have written so far.
func writtenPages(db *bbolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetWrite()
}
