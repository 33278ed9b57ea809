// Package subdrain hands a hub subscription's notices to their handler on
// demand: a goroutine runs only while notices are queued, instead of one
// blocked on the subscription for its whole life.
//
// A long-lived goroutine per subscription costs twice under load: its
// stack while idle (8 KiB or more for every followed room of every
// connection), and, because the collector halves the stacks of idle
// goroutines, a stack copy back up on nearly every notice once notices
// per subscription are rarer than collections (1,000 rooms). A drain
// goroutine starts at the runtime's average stack size and is gone when
// the queue is empty. The Rocket.Chat DDP room feeds and the LiveChat
// RTM sessions' pushes (adapters/livechat/rtmconn) both drain this way.
//
// A fresh goroutine per drain still grows its stack on every drain (the
// rendering under a handler runs deep): with one notice per room between
// two collections, that stack growth was a quarter of the DDP feeds' CPU.
// A Pool runs drains on goroutines that linger after their drain for the
// next one, of any subscription, so that a busy gateway's drains run on
// a few goroutines whose stacks are already grown; a pool that sees no
// drain for its linger holds no goroutine.
package subdrain

import (
	"context"
	"sync"
	"time"

	"chatgate/adapters/internal/gopool"
	"chatgate/core/hub"
)

// Drainer delivers one subscription's notices on demand, one at a time,
// in queue order.
type Drainer struct {
	pool   *Pool // nil: a goroutine of its own per drain
	ctx    context.Context
	sub    *hub.Sub
	handle func(context.Context, *hub.Notice)
	ended  func(error)
	wg     *sync.WaitGroup // the owner's: it waits for a running drain
	// drainFn is d.drain, made once: a wake hands it to the pool without
	// allocating a method value.
	drainFn func()

	mu      sync.Mutex
	running bool // a drain goroutine is running (or about to)
	stopped bool // the owner is ending: start no more drains
	over    bool // ended was called
}

// Start drains sub from now on: handle is called for each notice (not
// once ctx has ended: those are dropped), and ended once, with the
// subscription's error, when it ends (closed, or cut off as too slow).
// Each drain goroutine is counted in wg. Notices queued before Start are
// delivered too.
func Start(ctx context.Context, sub *hub.Sub, handle func(context.Context, *hub.Notice), ended func(error), wg *sync.WaitGroup) *Drainer {
	return (*Pool)(nil).Start(ctx, sub, handle, ended, wg)
}

// Start is subdrain.Start with drains run by p (a nil p starts a
// goroutine per drain).
func (p *Pool) Start(ctx context.Context, sub *hub.Sub, handle func(context.Context, *hub.Notice), ended func(error), wg *sync.WaitGroup) *Drainer {
	d := &Drainer{pool: p, ctx: ctx, sub: sub, handle: handle, ended: ended, wg: wg}
	d.drainFn = d.drain
	sub.SetWake(d.wake) // also wakes for what was queued before
	d.wake()
	return d
}

// wake starts a drain unless one is running; it never blocks (the bus
// calls it while publishing).
func (d *Drainer) wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || d.stopped || d.over {
		return
	}
	d.running = true
	d.wg.Add(1)
	d.pool.run(d)
}

// drain hands over queued notices until none is left, then exits. A
// notice queued after its last look wakes a new drain, unless this one
// is still marked running: it looks once more under the lock.
func (d *Drainer) drain() {
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

// Stop starts no more drains; the owner's WaitGroup waits for one still
// running.
func (d *Drainer) Stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
}

// Running reports whether a drain goroutine is running (for tests).
func (d *Drainer) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// Pool runs drains on goroutines that, once their drain is over, wait up
// to a linger for the next drain of any Drainer the pool started
// (adapters/internal/gopool): the most recently idle goroutine takes the
// next drain (its stack is the likeliest to be grown still, and it waits
// with enough of its stack in use that the collector does not halve it);
// one idle for a whole linger exits. When no goroutine is idle a new one
// starts: a drain never waits for another subscription's drain. Order per
// subscription is the Drainer's (one drain at a time), not the pool's.
type Pool struct {
	g *gopool.Pool
}

// NewPool returns a pool whose goroutines linger for linger after a drain.
func NewPool(linger time.Duration) *Pool { return &Pool{g: gopool.New(linger)} }

// Close ends the idle goroutines; drains started afterwards run on
// goroutines of their own, which do not linger.
func (p *Pool) Close() { p.g.Close() }

// Idle is the number of goroutines waiting for a drain (for tests).
func (p *Pool) Idle() int { return p.g.Idle() }

// run hands d's drain to an idle goroutine, or starts one; it never
// blocks (wake runs while the bus publishes).
func (p *Pool) run(d *Drainer) {
	if p == nil {
		go d.drain()
		return
	}
	p.g.Go(d.drainFn)
}
