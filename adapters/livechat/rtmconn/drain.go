package rtmconn

import (
	"context"
	"sync"

	"chatgate/core/hub"
)

// Pusher is a Client whose pushes all come from one hub subscription. The
// session then delivers them on demand: a goroutine runs only while
// notices are queued, instead of one blocked on the subscription for the
// whole life of the connection (8 KiB of stack for every idle, logged-in
// connection; see docs/performance.md).
type Pusher interface {
	Client
	// Pushes is called once, with Started; handle is called for each
	// notice in order, one at a time, and ended once when the
	// subscription ends (cut off as too slow, or closed by Logout).
	Pushes() (sub *hub.Sub, handle func(context.Context, *hub.Notice), ended func(error))
}

// drainer delivers a subscription's notices on demand.
type drainer struct {
	ctx    context.Context
	sub    *hub.Sub
	handle func(context.Context, *hub.Notice)
	ended  func(error)
	wg     *sync.WaitGroup // the session's: Run waits for a running drain

	mu      sync.Mutex
	running bool // a drain goroutine is running (or about to)
	stopped bool // the session is ending: start no more drains
	over    bool // ended was called
}

func startDrainer(ctx context.Context, p Pusher, wg *sync.WaitGroup) *drainer {
	d := &drainer{ctx: ctx, wg: wg}
	d.sub, d.handle, d.ended = p.Pushes()
	d.sub.SetWake(d.wake) // also wakes for what was queued before
	d.wake()
	return d
}

// wake starts a drain unless one is running; it never blocks.
func (d *drainer) wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || d.stopped || d.over {
		return
	}
	d.running = true
	d.wg.Add(1)
	go d.drain()
}

// drain hands over queued notices until none is left, then exits. A
// notice queued after its last look wakes a new drain, unless this one
// is still marked running: it looks once more under the lock.
func (d *drainer) drain() {
	defer d.wg.Done()
	for {
		select {
		case n := <-d.sub.C():
			if d.ctx.Err() == nil {
				d.handle(d.ctx, n)
			}
			continue
		default:
		}
		d.mu.Lock()
		if len(d.sub.C()) > 0 && !d.stopped {
			d.mu.Unlock()
			continue
		}
		select {
		case <-d.sub.Done():
			if !d.over {
				d.over = true
				d.mu.Unlock()
				d.ended(d.sub.Err())
				d.mu.Lock()
			}
		default:
		}
		d.running = false
		d.mu.Unlock()
		return
	}
}

// stop starts no more drains; the session's WaitGroup waits for one
// still running.
func (d *drainer) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
}
