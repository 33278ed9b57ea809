package rtmconn

import (
	"context"
	"sync"

	"chatgate/adapters/internal/gopool"
)

// Keyed is a Client whose requests may be pipelined: several requests of
// one connection in flight at once. An agent app answering many chats
// sends a request per chat without waiting for each response; served one
// at a time, the connection gets at most one response per store commit
// (fsync), which caps an agent at a few hundred messages per second
// whatever the number of chats.
type Keyed interface {
	Client
	// OrderKey names what a request frame touches, usually its chat:
	// requests with the same key are served one after the other in the
	// order received, so that one chat's messages keep their order and
	// their effects (a message then a deactivation) happen as sent. The
	// empty key means "serve alone": after every earlier request has been
	// answered and before any later one begins (login, logout, routing
	// status, lists: anything whose effect is not confined to one chat,
	// and any frame the surface cannot classify).
	OrderKey(frame []byte) string
}

// pipeline serves one connection's keyed requests concurrently, at most
// cap(slots) at a time: when all slots are taken the reader stops reading
// the socket, which pushes back on the client through TCP instead of
// buffering requests or goroutines without bound.
type pipeline struct {
	key   func([]byte) string
	serve func(context.Context, []byte) error
	// alone, if set, serves the unkeyed requests instead of serve (the
	// session hands them to its request goroutine, see offload).
	alone func(context.Context, []byte) error
	fail  func() // called once a request finds the socket gone
	slots chan struct{}
	busy  sync.WaitGroup // requests in flight

	mu    sync.Mutex
	tails map[string]chan struct{} // per key, closed when its last request is answered

	// pool runs the keyed requests (the registry's, see serveLinger). A
	// request started a goroutine of its own, and growing that fresh
	// goroutine's stack (JSON runs deep) was the largest share of
	// runtime.newstack in the gateway's profile; then a worker per
	// connection lingered for the connection's next request, whose stack
	// the collector halved between two of them.
	pool *gopool.Pool
	// jobs keeps the jobs of requests answered for the next ones (at
	// most cap(slots) are in flight): a request hands the pool a job
	// made once instead of a closure of its own (~100 B each).
	jobs chan *job
}

// job is a keyed request as the pool runs it; run is its do, bound once.
type job struct {
	p   *pipeline
	t   task
	run func()
}

func (j *job) do() {
	p, t := j.p, j.t
	j.t = task{} // the frame is not kept while the job waits for reuse
	select {
	case p.jobs <- j:
	default:
	}
	p.run(t)
}

// task is one keyed request handed to a worker.
type task struct {
	ctx        context.Context
	key        string
	frame      []byte
	prev, done chan struct{}
}

func newPipeline(max int, key func([]byte) string, serve func(context.Context, []byte) error, fail func(), pool *gopool.Pool) *pipeline {
	return &pipeline{key: key, serve: serve, fail: fail, slots: make(chan struct{}, max), tails: make(map[string]chan struct{}),
		pool: pool, jobs: make(chan *job, max)}
}

// submit serves frame under key; it returns once the request is started
// (keyed) or answered (unkeyed). It is called from the reader goroutine
// only. An error means the socket is gone or ctx ended.
func (p *pipeline) submit(ctx context.Context, key string, frame []byte) error {
	if key == "" {
		p.busy.Wait() // in-flight requests end within the request timeout
		if p.alone != nil {
			return p.alone(ctx, frame)
		}
		return p.serve(ctx, frame)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan struct{})
	p.mu.Lock()
	prev := p.tails[key]
	p.tails[key] = done
	p.mu.Unlock()
	p.busy.Add(1)
	var j *job
	select {
	case j = <-p.jobs:
	default:
		j = &job{p: p}
		j.run = j.do
	}
	j.t = task{ctx: ctx, key: key, frame: frame, prev: prev, done: done}
	p.pool.Go(j.run)
	return nil
}

// run serves one keyed request after the previous request of its key.
func (p *pipeline) run(t task) {
	defer p.busy.Done()
	if t.prev != nil {
		<-t.prev // the previous request of this key: ends within its timeout
	}
	if err := p.serve(t.ctx, t.frame); err != nil {
		p.fail()
	}
	p.mu.Lock()
	if p.tails[t.key] == t.done {
		delete(p.tails, t.key)
	}
	p.mu.Unlock()
	close(t.done)
	<-p.slots
}

// wait returns once every request submitted has been answered.
func (p *pipeline) wait() { p.busy.Wait() }
