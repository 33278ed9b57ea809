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
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs jobs on lingering goroutines. The zero value is not usable;
// a nil *Pool runs each job on a goroutine of its own.
type Pool struct {
	linger  time.Duration
	mu      sync.Mutex
	idle    []*worker // LIFO
	closed  bool
	started atomic.Int64
	running atomic.Int64
}

type worker struct {
	next chan func() // buffered 1: whoever takes the worker off idle sends it one job, or closes it
}

// New returns a pool whose goroutines wait up to linger after a job for
// the next one before they exit.
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
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
		p.running.Add(-1)
	}()
	grow(0)
	for job != nil {
		job()
		job = nil // what it holds (a request's frame) is not kept while waiting
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		if t == nil {
			t = time.NewTimer(p.linger)
		} else {
			t.Reset(p.linger)
		}
		job = p.wait(w, t, 0)
	}
}

// ballast is the stack a waiting goroutine keeps in use (see wait).
const ballast = 8 << 10

// grow grows a new goroutine's stack to 16 KiB at once (a frame of
// ballast bytes on a stack of the runtime's starting size), copying the
// little of it in use, instead of copying it at each doubling from 2 KiB
// as its first job runs deep, with more of it in use each time. n is 0.
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

// wait returns the next job handed to w, or nil when w's linger (t) runs
// out or the pool is closed. It waits with ballast bytes of its stack in
// use: the collector halves the stack of a goroutine that has less than a
// quarter of it in use, and a lingering goroutine doing nothing would
// otherwise lose, at every collection, the stack its jobs grew, then copy
// it back up in its next job (runtime.newstack). With 8 KiB in use
// while waiting, a stack of up to 32 KiB (what a request of the desk and
// the store takes) is kept for as long as the goroutine lingers. This is
// what CockroachDB's growstack does for its request goroutines, the other
// way round (grow once, up front). pad is never read: n, 0 for every
// call, only keeps the compiler from dropping it.
//
//go:noinline
func (p *Pool) wait(w *worker, t *time.Timer, n int) func() {
	var pad [ballast]byte
	pad[n] = 1
	select {
	case job, ok := <-w.next:
		if !ok {
			return nil // Close
		}
		return job
	case <-t.C:
	}
	p.mu.Lock()
	if i := slices.Index(p.idle, w); i >= 0 {
		p.idle = slices.Delete(p.idle, i, i+1)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	// Taken off idle as the linger ran out: a job (or Close) is on its
	// way.
	if job, ok := <-w.next; ok && pad[n] == 1 {
		return job
	}
	return nil
}
