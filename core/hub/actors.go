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
	// free keeps actors (and the mailboxes they made) of keys gone idle
	// for the next key: a command on an idle key would otherwise
	// allocate one per command.
	free sync.Pool
}

// Key names what an actor serialises: a space ("c" for conversations,
// "v" for visitors, as the caller chooses) and an id within it. Being a
// pair, a key costs no string concatenation per command.
type Key struct {
	Space string
	ID    string
}

func (k Key) String() string {
	if k.Space == "" {
		return k.ID
	}
	return k.Space + ":" + k.ID
}

// Job is work run on an actor. A pointer to a command's own state
// satisfies it without the closure a func would cost.
type Job interface {
	Run(ctx context.Context) error
}

// FuncJob adapts a func to Job.
type FuncJob func(ctx context.Context) error

// Run calls f.
func (f FuncJob) Run(ctx context.Context) error { return f(ctx) }

type actorShard struct {
	mu sync.Mutex
	m  map[Key]*actor
}

type actor struct {
	// mbox holds the jobs queued behind the running one. It is made by
	// the first job that has to queue (guarded by the shard's mu; read
	// without it only after that): most commands find their key idle and
	// run alone, and a mailbox of 256 jobs is 8 KiB to allocate and
	// collect per command. An actor back from the free pool keeps the
	// mailbox it made (empty: its key went idle with refs at zero).
	mbox chan job
	refs int // jobs queued or running, guarded by the shard's mu
}

type job struct {
	ctx  context.Context
	j    Job
	errc chan error
}

// NewActors returns actors whose mailboxes hold up to mailbox jobs; a caller
// finding a mailbox full waits, honouring its context.
func NewActors(mailbox int) *Actors {
	if mailbox <= 0 {
		mailbox = 256
	}
	a := &Actors{seed: maphash.MakeSeed(), mailbox: mailbox}
	a.free.New = func() any { return new(actor) }
	for i := range a.shards {
		a.shards[i].m = make(map[Key]*actor)
	}
	return a
}

// Do runs fn on key's actor after every job queued before it, and returns
// fn's error. fn receives the caller's context. When the key is idle, fn
// runs on the caller's goroutine.
func (a *Actors) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	return a.Run(ctx, Key{ID: key}, FuncJob(fn))
}

// Run is Do for a Key and a Job.
func (a *Actors) Run(ctx context.Context, key Key, j Job) error {
	sh := &a.shards[maphash.Comparable(a.seed, key)%shardCount]
	sh.mu.Lock()
	act := sh.m[key]
	if act == nil {
		// The key is idle: run j right here rather than on a new
		// goroutine. Most commands find their conversation idle, and a
		// fresh goroutine per command cost its start and the growth of
		// its stack (JSON encoding runs deep) on every message. Jobs
		// queued meanwhile wait in the mailbox as usual.
		act = a.free.Get().(*actor)
		act.refs = 1
		sh.m[key] = act
		sh.mu.Unlock()
		var err error
		if ctx.Err() != nil {
			err = fmt.Errorf("actor %s: %w", key, ctx.Err())
		} else {
			err = safeRun(ctx, j)
		}
		sh.mu.Lock()
		act.refs--
		if act.refs == 0 {
			delete(sh.m, key)
			sh.mu.Unlock()
			a.free.Put(act)
		} else {
			go a.run(act, sh, key) // hand the queued jobs to a goroutine of their own
			sh.mu.Unlock()
		}
		return err
	}
	act.refs++
	if act.mbox == nil {
		act.mbox = make(chan job, a.mailbox)
	}
	sh.mu.Unlock()

	qj := job{ctx: ctx, j: j, errc: make(chan error, 1)}
	select {
	case act.mbox <- qj:
	case <-ctx.Done():
		// Not queued. The reference taken above passes to a no-op job sent
		// in the background, so the actor still counts down to zero and
		// exits once its mailbox drains.
		go func() {
			act.mbox <- job{ctx: context.Background(), j: FuncJob(func(context.Context) error { return nil }), errc: make(chan error, 1)}
		}()
		return fmt.Errorf("actor %s: %w", key, ctx.Err())
	}
	return <-qj.errc
}

func (a *Actors) run(act *actor, sh *actorShard, key Key) {
	for j := range act.mbox {
		var err error
		if j.ctx.Err() != nil {
			err = fmt.Errorf("actor %s: %w", key, j.ctx.Err())
		} else {
			err = safeRun(j.ctx, j.j)
		}
		j.errc <- err
		sh.mu.Lock()
		act.refs--
		if act.refs == 0 {
			delete(sh.m, key)
			sh.mu.Unlock()
			a.free.Put(act)
			return
		}
		sh.mu.Unlock()
	}
}

// safeRun turns a panic in a job into an error so that one bad command
// cannot take the process (and every other conversation) down.
func safeRun(ctx context.Context, j Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("actor job panicked: %v", r)
		}
	}()
	return j.Run(ctx)
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
