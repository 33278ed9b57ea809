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
package subdrain

import (
	"context"
	"sync"
	"time"

	"chatgate/core/hub"
)

// Drainer delivers one subscription's notices on demand, one at a time,
// in queue order.
type Drainer struct {
	ctx    context.Context
	sub    *hub.Sub
	handle func(context.Context, *hub.Notice)
	ended  func(error)
	wg     *sync.WaitGroup // the owner's: it waits for a running drain
	linger time.Duration   // how long an idle drain waits for the next notice
	kick   chan struct{}   // wakes a lingering drain (capacity 1); made by the first drain that lingers

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
	return StartLinger(ctx, sub, handle, ended, wg, 0)
}

// StartLinger is Start, but a drain goroutine whose queue ran empty waits
// up to linger for the next notice before it exits. For a subscription
// whose notices come in a steady stream (a conversing LiveChat customer's
// session gets one every few hundred milliseconds or sooner), that keeps
// one goroutine, whose stack has already grown to what handling a notice
// takes, instead of starting one per burst and growing its stack again
// (runtime.newstack was 3-5 % of an in-process customer RTM profile, the
// goroutine starts in hub.Publish another 2-3 %). An idle subscription
// still holds no goroutine once its last drain's linger is over.
func StartLinger(ctx context.Context, sub *hub.Sub, handle func(context.Context, *hub.Notice), ended func(error), wg *sync.WaitGroup, linger time.Duration) *Drainer {
	d := &Drainer{ctx: ctx, sub: sub, handle: handle, ended: ended, wg: wg, linger: linger}
	sub.SetWake(d.wake) // also wakes for what was queued before
	d.wake()
	return d
}

// wake starts a drain unless one is running (a lingering one is kicked);
// it never blocks (the bus calls it while publishing).
func (d *Drainer) wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.over {
		return
	}
	if d.running {
		d.kickLocked()
		return
	}
	d.running = true
	d.wg.Add(1)
	go d.drain()
}

// kickLocked wakes a lingering drain without blocking: the channel holds
// one kick, and one is enough to make it look at the queue again. Call it
// with d.mu held.
func (d *Drainer) kickLocked() {
	if d.kick != nil {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

// drain hands over queued notices until none is left, then lingers (if
// asked) and exits. A notice queued after its last look wakes a new
// drain, unless this one is still marked running: it looks once more
// under the lock, and a lingering one is kicked by wake.
func (d *Drainer) drain() {
	defer d.wg.Done()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	lingered := false // the last wait for a kick timed out
	for {
		select {
		case n := <-d.sub.C():
			if d.ctx.Err() == nil {
				d.handle(d.ctx, n)
			}
			lingered = false
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
		if d.linger > 0 && !d.stopped && !d.over && !lingered && d.ctx.Err() == nil {
			if d.kick == nil { // not before: an idle subscription keeps no channel
				d.kick = make(chan struct{}, 1)
			}
			kick := d.kick
			d.mu.Unlock()
			if t == nil {
				t = time.NewTimer(d.linger)
			} else {
				t.Reset(d.linger)
			}
			select {
			case <-kick:
			case <-d.sub.Done():
			case <-d.ctx.Done():
			case <-t.C:
				lingered = true
			}
			continue
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
	d.kickLocked() // a lingering drain exits now
	d.mu.Unlock()
}

// Running reports whether a drain goroutine is running (for tests).
func (d *Drainer) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}
