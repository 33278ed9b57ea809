package rtmconn

import (
	"context"
	"time"

	"chatgate/adapters/internal/gopool"
)

// serveLinger is how long a goroutine of a registry's request pool
// (gopool) waits for the next request, of any session, before it exits.
// Under load the pool's most recently idle goroutine takes the next
// request, so its stack has already grown to what serving takes (JSON,
// the desk, the store).
//
// It was a goroutine per logged-in connection lingering 5 s for that
// connection's next request (1 s before: with 1,000 conversing customers
// a customer's next message came 1-2 s after its last, so most requests
// started a fresh goroutine, runtime.newstack 18 % of an in-process
// customer 1,000 x 32 profile). That still copied stacks on nearly every
// request: the collector halves the stack of every waiting goroutine, and
// each connection's came back to serve one request per collection or
// less (runtime.copystack 7 % of the same profile in round 7). The shared
// pool's goroutines are busy at most collections instead.
const serveLinger = 5 * time.Second

// offload serves one connection's requests, one at a time, on a goroutine
// other than the socket's reader. The reader of an idle connection is
// what a held socket costs for as long as it is open, and its stack never
// shrinks below the deepest call it made until a garbage collection,
// which an idle process rarely runs: serving a request (JSON, the desk,
// the store) on the reader grew every logged-in connection's stack to
// 8-16 KiB, while blocking in a read needs 4 KiB.
//
// A request runs on the registry's pool (see serveLinger), except the
// login: thousands of clients logging in at once would leave as many of
// the pool's goroutines lingering with a grown stack (8-16 KiB) meanwhile,
// and that peak stays in the process's RSS. The channel a pooled request
// answers on is made at the first one: an idle logged-in connection,
// whose only request was its login, keeps none.
type offload struct {
	serve func(context.Context, []byte) error
	pool  *gopool.Pool // nil: a goroutine of its own per request
	errs  chan error
	// job serves ctx and frame, the current call's, on the pool: made
	// once, so that a call allocates no closure. Calls do not overlap,
	// and the pool's hand-off and errs order the accesses.
	job   func()
	ctx   context.Context
	frame []byte
}

func newOffload(serve func(context.Context, []byte) error, pool *gopool.Pool) *offload {
	return &offload{serve: serve, pool: pool}
}

// call serves frame and returns its result, on the pool when pooled, else
// on a goroutine of its own. Calls must not overlap (the reader makes
// them, one at a time).
func (o *offload) call(ctx context.Context, frame []byte, pooled bool) error {
	if !pooled {
		errc := make(chan error, 1)
		go func() { errc <- o.serve(ctx, frame) }()
		return <-errc
	}
	if o.job == nil {
		o.errs = make(chan error, 1)
		o.job = func() {
			err := o.serve(o.ctx, o.frame)
			o.ctx, o.frame = nil, nil // not kept until the next request
			o.errs <- err
		}
	}
	o.ctx, o.frame = ctx, frame
	o.pool.Go(o.job)
	return <-o.errs
}
