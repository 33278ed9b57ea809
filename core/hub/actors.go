// Package hub serialises work per conversation and fans committed changes
// out to subscribers. Actors give each key (a conversation, a visitor) a FIFO
// of jobs run one at a time by a goroutine that exists only while the key has
// work; the bus delivers notices to bounded subscriber queues and cuts off a
// subscriber that falls behind instead of buffering without bound.
package hub

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
)

const shardCount = 64

// Actors runs jobs serially per key. The zero value is not usable; call
// NewActors.
type Actors struct {
	seed    maphash.Seed
	mailbox int
	shards  [shardCount]actorShard
}

type actorShard struct {
	mu sync.Mutex
	m  map[string]*actor
}

type actor struct {
	// mbox holds the jobs queued behind the running one. It is made by
	// the first job that has to queue (guarded by the shard's mu; read
	// without it only after that): most commands find their key idle and
	// run alone, and a mailbox of 256 jobs is 8 KiB to allocate and
	// collect per command.
	mbox chan job
	refs int // jobs queued or running, guarded by the shard's mu
}

type job struct {
	ctx  context.Context
	fn   func(context.Context) error
	errc chan error
}

// NewActors returns actors whose mailboxes hold up to mailbox jobs; a caller
// finding a mailbox full waits, honouring its context.
func NewActors(mailbox int) *Actors {
	if mailbox <= 0 {
		mailbox = 256
	}
	a := &Actors{seed: maphash.MakeSeed(), mailbox: mailbox}
	for i := range a.shards {
		a.shards[i].m = make(map[string]*actor)
	}
	return a
}

// Do runs fn on key's actor after every job queued before it, and returns
// fn's error. fn receives the caller's context. When the key is idle, fn
// runs on the caller's goroutine.
func (a *Actors) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	sh := &a.shards[maphash.String(a.seed, key)%shardCount]
	sh.mu.Lock()
	act := sh.m[key]
	if act == nil {
		// The key is idle: run fn right here rather than on a new
		// goroutine. Most commands find their conversation idle, and a
		// fresh goroutine per command cost its start and the growth of
		// its stack (JSON encoding runs deep) on every message. Jobs
		// queued meanwhile wait in the mailbox as usual.
		act = &actor{refs: 1}
		sh.m[key] = act
		sh.mu.Unlock()
		var err error
		if ctx.Err() != nil {
			err = fmt.Errorf("actor %s: %w", key, ctx.Err())
		} else {
			err = safeRun(job{ctx: ctx, fn: fn})
		}
		sh.mu.Lock()
		act.refs--
		if act.refs == 0 {
			delete(sh.m, key)
		} else {
			go act.run(sh, key) // hand the queued jobs to a goroutine of their own
		}
		sh.mu.Unlock()
		return err
	}
	act.refs++
	if act.mbox == nil {
		act.mbox = make(chan job, a.mailbox)
	}
	sh.mu.Unlock()

	j := job{ctx: ctx, fn: fn, errc: make(chan error, 1)}
	select {
	case act.mbox <- j:
	case <-ctx.Done():
		// Not queued. The reference taken above passes to a no-op job sent
		// in the background, so the actor still counts down to zero and
		// exits once its mailbox drains.
		go func() {
			act.mbox <- job{ctx: context.Background(), fn: func(context.Context) error { return nil }, errc: make(chan error, 1)}
		}()
		return fmt.Errorf("actor %s: %w", key, ctx.Err())
	}
	return <-j.errc
}

func (act *actor) run(sh *actorShard, key string) {
	for j := range act.mbox {
		var err error
		if j.ctx.Err() != nil {
			err = fmt.Errorf("actor %s: %w", key, j.ctx.Err())
		} else {
			err = safeRun(j)
		}
		j.errc <- err
		sh.mu.Lock()
		act.refs--
		if act.refs == 0 {
			delete(sh.m, key)
			sh.mu.Unlock()
			return
		}
		sh.mu.Unlock()
	}
}

// safeRun turns a panic in a job into an error so that one bad command
// cannot take the process (and every other conversation) down.
func safeRun(j job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("actor job panicked: %v", r)
		}
	}()
	return j.fn(j.ctx)
}

// Len reports how many keys have live actors (for metrics and tests).
func (a *Actors) Len() int {
	n := 0
	for i := range a.shards {
		a.shards[i].mu.Lock()
		n += len(a.shards[i].m)
		a.shards[i].mu.Unlock()
	}
	return n
}
