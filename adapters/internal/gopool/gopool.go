// Package gopool runs short jobs on goroutines that linger after a job for
// the next one, so that a busy server's jobs run on a few goroutines whose
// stacks have already grown to what the jobs take.
//
// A goroutine per job, or one per connection that waits for that
// connection's next request, grows its stack again and again: a fresh
// goroutine starts small, and the collector halves the stack of every
// goroutine that is waiting with little of it in use, so a connection's
// goroutine that serves one request per collection or less (1,000
// conversing customers: a request every 1-2 s each, a collection every
// second) copies its stack back up, several times over, on nearly every
// request (runtime.copystack 7 % of an in-process customer 1,000 x 32
// profile, docs/performance.md, round 7). Jobs of every connection share
// the pool's goroutines instead: the one idle most recently takes the
// next job (its stack is the likeliest to be grown still), so under load
// a handful of goroutines serve everything, busy at most collections,
// and the rest run out their linger and exit. An idle server holds none.
package gopool

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs jobs on lingering goroutines. The zero value is not usable;
// a nil *Pool runs each job on a goroutine of its own.
type Pool struct {
	linger  time.Duration
	mu      sync.Mutex
	idle    []*worker // LIFO: idle[0] has waited longest
	closed  bool
	started atomic.Int64
	running atomic.Int64
	// One timer per pool ends the goroutines that lingered long enough
	// (reap), instead of a timer per idle goroutine that each wait armed
	// and a select on it (a select and a timer reset per job were 2.5 %
	// of an in-process customer 1,000 x 32 profile; a plain channel
	// receive is what a hand-off needs). It ticks every linger/2 while a
	// goroutine is idle, and stops when none is.
	reaper *time.Timer
	ticks  uint64 // reaper ticks so far
	armed  bool   // the reaper is set to tick
}

type worker struct {
	next chan func() // buffered 1: whoever takes the worker off idle sends it one job, or closes it
	tick uint64      // p.ticks when it went idle
}

// New returns a pool whose goroutines wait about linger after a job for
// the next one before they exit (between linger and 1.5 x linger: see
// reap); with linger <= 0 a goroutine exits after its job.
func New(linger time.Duration) *Pool { return &Pool{linger: linger} }

// Go runs job on an idle goroutine of the pool, or on a new one when none
// is idle: a job never waits for another job. It never blocks.
func (p *Pool) Go(job func()) {
	if p == nil {
		go job()
		return
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.next <- job // buffered, and only this call sends to w: never blocks
		return
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		go job()
		return
	}
	p.started.Add(1)
	p.running.Add(1)
	go p.work(&worker{next: make(chan func(), 1)}, job)
}

// Close ends the idle goroutines; jobs given afterwards run on goroutines
// of their own, which do not linger.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.next)
	}
	p.idle = nil
	if p.reaper != nil {
		p.reaper.Stop()
	}
	p.armed = false
}

// Idle is the number of goroutines waiting for a job (for tests).
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Started is the number of goroutines the pool has started (for tests).
func (p *Pool) Started() int64 { return p.started.Load() }

// Running is the number of the pool's goroutines that have not exited
// (for tests).
func (p *Pool) Running() int64 { return p.running.Load() }

// work runs job, then the jobs handed to it while it lingers.
func (p *Pool) work(w *worker, job func()) {
	defer p.running.Add(-1)
	Grow()
	for job != nil {
		job()
		job = nil // what it holds (a request's frame) is not kept while waiting
		if !p.park(w) {
			return
		}
		job = p.wait(w, 0)
	}
}

// park puts w on the idle stack and makes sure the reaper ticks; false
// when w is to exit instead (the pool is closed, or lingers not at all).
func (p *Pool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.linger <= 0 {
		return false
	}
	w.tick = p.ticks
	p.idle = append(p.idle, w)
	if !p.armed {
		p.armed = true
		if p.reaper == nil {
			p.reaper = time.AfterFunc(p.linger/2, p.reap)
		} else {
			p.reaper.Reset(p.linger / 2)
		}
	}
	return true
}

// reap, the reaper's tick, ends the goroutines idle since before the
// tick before last: idle for at least two ticks (linger) and at most
// three. The idle stack is in the order the goroutines went idle, so
// they are a prefix of it.
func (p *Pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.armed {
		return
	}
	p.ticks++
	n := 0
	for n < len(p.idle) && p.ticks-p.idle[n].tick >= 3 {
		close(p.idle[n].next)
		n++
	}
	if n > 0 {
		k := copy(p.idle, p.idle[n:])
		clear(p.idle[k:])
		p.idle = p.idle[:k]
	}
	if len(p.idle) == 0 {
		p.armed = false
		p.idle = nil // an idle pool keeps no slice
		return
	}
	p.reaper.Reset(p.linger / 2)
}

// ballast is the stack a waiting goroutine keeps in use (see wait).
const ballast = 8 << 10

// Grow grows the calling goroutine's stack to 16 KiB at once (a frame of
// ballast bytes on a stack of the runtime's starting size), copying the
// little of it in use, instead of copying it at each doubling from 2 KiB
// as its first job runs deep, with more of it in use each time. A new
// goroutine that is about to run deep (a pool's worker, a connection's
// short-lived method worker) calls it first.
func Grow() { grow(0) }

// grow is Grow; n is 0 (a use the compiler cannot fold).
//
//go:noinline
func grow(n int) byte {
	var pad [ballast]byte
	return touch(pad[:], n) // a use the compiler cannot drop the frame for
}

//go:noinline
func touch(b []byte, n int) byte {
	b[n] = 1
	return b[len(b)-1-n]
}

// wait returns the next job handed to w, or nil when the pool ends w
// (its linger ran out, see reap, or Close). It waits with ballast bytes
// of its stack in use: the collector halves the stack of a goroutine that
// has less than a quarter of it in use, and a lingering goroutine doing
// nothing would otherwise lose, at every collection, the stack its jobs
// grew, then copy it back up in its next job (runtime.newstack). With
// 8 KiB in use while waiting, a stack of up to 32 KiB (what a request of
// the desk and the store takes) is kept for as long as the goroutine
// lingers. This is what CockroachDB's growstack does for its request
// goroutines, the other way round (grow once, up front). pad is never
// read: n, 0 for every call, only keeps the compiler from dropping it.
//
//go:noinline
func (p *Pool) wait(w *worker, n int) func() {
	var pad [ballast]byte
	pad[n] = 1
	job, ok := <-w.next
	if !ok || pad[n] != 1 {
		return nil
	}
	return job
}
