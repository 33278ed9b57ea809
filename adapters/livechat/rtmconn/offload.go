package rtmconn

import (
	"context"
	"time"
)

// offloadLinger is how long a request goroutine of a logged-in
// connection waits for the connection's next request before it exits. A
// conversing client's next request usually comes sooner, so a busy
// connection keeps one goroutine, whose stack has already grown to what
// serving takes, instead of starting one per request. It was 1 s: with
// 1,000 conversing customers a customer's next message came 1-2 s after
// its last (each waits for the agent's answer), so most requests started a
// fresh goroutine whose stack grew again through the desk and the store
// (runtime.newstack 18 % of an in-process customer 1,000 x 32 profile,
// 13 % at 5 s, measured with the push drain lingering as long).
// What a linger costs is a goroutine (its stack shrunk by each collection)
// for 5 s after a conversing client's last request. The login request does not
// linger: thousands of clients logging in within a linger would each hold
// a grown stack (8-16 KiB) meanwhile, and that peak stays in the
// process's RSS.
const offloadLinger = 5 * time.Second

// offload serves one connection's requests, one at a time, on a goroutine
// other than the socket's reader. The reader of an idle connection is
// what a held socket costs for as long as it is open, and its stack never
// shrinks below the deepest call it made until a garbage collection,
// which an idle process rarely runs: serving a request (JSON, the desk,
// the store) on the reader grew every logged-in connection's stack to
// 8-16 KiB, while blocking in a read needs 4 KiB.
//
// The channels to a lingering goroutine are made at the first request that
// lingers (one after login): an idle logged-in connection, whose only
// request was its login, keeps none.
type offload struct {
	serve func(context.Context, []byte) error
	jobs  chan job // unbuffered: a lingering goroutine takes the next frame
	errs  chan error
}

type job struct {
	frame  []byte
	linger time.Duration // how long to wait for the next job afterwards
}

func newOffload(serve func(context.Context, []byte) error) *offload {
	return &offload{serve: serve}
}

// call serves frame and returns its result; the goroutine that served it
// then waits up to linger for the next call. Calls must not overlap (the
// reader makes them, one at a time).
func (o *offload) call(ctx context.Context, frame []byte, linger time.Duration) error {
	if linger <= 0 && o.jobs == nil {
		errc := make(chan error, 1)
		go func() { errc <- o.serve(ctx, frame) }()
		return <-errc
	}
	if o.jobs == nil {
		o.jobs, o.errs = make(chan job), make(chan error, 1)
	}
	j := job{frame: frame, linger: linger}
	select {
	case o.jobs <- j:
	default:
		go o.work(ctx, j)
	}
	return <-o.errs
}

// stop ends a lingering goroutine; call it after the last call returned.
func (o *offload) stop() {
	if o.jobs != nil {
		close(o.jobs)
	}
}

func (o *offload) work(ctx context.Context, j job) {
	var t *time.Timer
	for {
		o.errs <- o.serve(ctx, j.frame)
		if j.linger <= 0 {
			break
		}
		if t == nil {
			t = time.NewTimer(j.linger)
		} else {
			t.Reset(j.linger)
		}
		var ok bool
		select {
		case j, ok = <-o.jobs:
			if ok {
				continue
			}
		case <-t.C:
		}
		break
	}
	if t != nil {
		t.Stop()
	}
}
