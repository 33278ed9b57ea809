package rtmconn

import (
	"context"
	"time"
)

// offloadLinger is how long a request goroutine waits for the
// connection's next request before it exits. A conversing client's next
// request usually comes sooner, so a busy connection keeps one goroutine
// (whose stack has already grown to what serving takes) instead of
// starting one per request; an idle connection keeps none. It is short
// because a goroutine that lingers after a login holds its grown stack
// (16 KiB) meanwhile: thousands of clients logging in within a linger
// would add up.
const offloadLinger = 250 * time.Millisecond

// offload serves one connection's requests, one at a time, on a goroutine
// other than the socket's reader. The reader of an idle connection is
// what a held socket costs for as long as it is open, and its stack never
// shrinks below the deepest call it made until a garbage collection,
// which an idle process rarely runs: serving a request (JSON, the desk,
// the store) on the reader grew every logged-in connection's stack to
// 8-16 KiB, while blocking in a read needs a fraction of it.
type offload struct {
	serve func(context.Context, []byte) error
	jobs  chan []byte // unbuffered: a lingering goroutine takes the next frame
	errs  chan error
}

func newOffload(serve func(context.Context, []byte) error) *offload {
	return &offload{serve: serve, jobs: make(chan []byte), errs: make(chan error, 1)}
}

// call serves frame and returns its result. Calls must not overlap (the
// reader makes them, one at a time).
func (o *offload) call(ctx context.Context, frame []byte) error {
	select {
	case o.jobs <- frame:
	default:
		go o.work(ctx, frame)
	}
	return <-o.errs
}

// stop ends a lingering goroutine; call it after the last call returned.
func (o *offload) stop() { close(o.jobs) }

func (o *offload) work(ctx context.Context, frame []byte) {
	linger := time.NewTimer(offloadLinger)
	defer linger.Stop()
	for {
		o.errs <- o.serve(ctx, frame)
		linger.Reset(offloadLinger)
		var ok bool
		select {
		case frame, ok = <-o.jobs:
			if !ok {
				return
			}
		case <-linger.C:
			return
		}
	}
}
