// Package outbox runs deliveries out of the store's outbox: the webhook
// worker and every relay connector hand their due rows to a Dispatcher,
// which keeps each (target, conversation) queue to one deliverer at a
// time, so that a queue's rows go out in order while other queues go on.
package outbox

import (
	"context"
	"sync"
	"time"

	"chatgate/store"
)

// Dispatcher reads the due queues of the targets starting with Prefix and
// hands each, as its rows in order, to Deliver on one of Concurrency
// workers, never a queue that is already being delivered. It looks again
// when a worker finishes, when Kick fires (something was committed) and
// every PollInterval (for due retries).
type Dispatcher struct {
	Store  store.Store
	Prefix string
	// Concurrency is how many queues are delivered at once (default 1);
	// PerQueue how many rows of a queue one read hands over (default 64).
	Concurrency, PerQueue int
	PollInterval          time.Duration
	Now                   func() time.Time
	Kick                  <-chan struct{}
	// Deliver delivers one queue's rows in order until one is not done,
	// and records the outcomes itself.
	Deliver func(ctx context.Context, rows []store.OutboxRow)
	// OnReadError, if set, is told when the due rows cannot be read.
	OnReadError func(error)
}

// Run dispatches until ctx ends, then waits for the deliveries in flight
// (Deliver decides how it finishes once ctx is done) and returns.
func (d Dispatcher) Run(ctx context.Context) {
	conc := max(d.Concurrency, 1)
	perQueue := d.PerQueue
	if perQueue <= 0 {
		perQueue = 64
	}
	poll := d.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	// At most conc queues are in flight, so neither channel ever holds
	// more than conc values: sends on them never block.
	jobs := make(chan []store.OutboxRow, conc)
	done := make(chan string, conc)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for q := range jobs {
				d.Deliver(ctx, q)
				done <- QueueKey(&q[0])
			}
		})
	}
	inflight := make(map[string]bool, conc)
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if free := conc - len(inflight); free > 0 && ctx.Err() == nil {
			// Ask for the queues in flight too (their heads are still
			// due), so that free slots find other queues behind them.
			rows, err := d.Store.OutboxDue(ctx, d.Prefix, now(), len(inflight)+free, perQueue)
			if err != nil && ctx.Err() == nil && d.OnReadError != nil {
				d.OnReadError(err)
			}
			for _, q := range SplitQueues(rows) {
				if len(inflight) >= conc {
					break
				}
				k := QueueKey(&q[0])
				if inflight[k] {
					continue
				}
				inflight[k] = true
				jobs <- q
			}
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return
		case <-d.Kick:
		case k := <-done:
			delete(inflight, k)
		case <-timer.C:
		}
	}
}

// QueueKey names the (target, conversation) queue of a row.
func QueueKey(r *store.OutboxRow) string { return r.Target + "\x00" + string(r.Conv) }

// SplitQueues cuts OutboxDue's rows into their queues (contiguous runs of
// one target and conversation), each in order.
func SplitQueues(rows []store.OutboxRow) [][]store.OutboxRow {
	var out [][]store.OutboxRow
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].Target == rows[i].Target && rows[j].Conv == rows[i].Conv {
			j++
		}
		out = append(out, rows[i:j:j])
		i = j
	}
	return out
}
