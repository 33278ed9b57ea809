package rtmconn

import (
	"time"

	"github.com/panjf2000/ants/v2"
)

// workerLinger is how long an idle worker goroutine waits for more work
// before it exits: under load the same few workers serve every request and
// push, while an idle gateway holds none (sessions hold no goroutine but
// their reader while idle).
const workerLinger = 2 * time.Second

// workers runs the short tasks of sessions (a pipelined request, a push
// drain) on reused goroutines. A fresh goroutine starts on a small stack
// and grows it, copying, every time a task renders JSON or commits through
// the desk: in the profile of customer RTM 100x4, growing stacks
// (runtime.newstack) cost 6 % of the CPU, two thirds of it on the
// goroutine started per agent request and per push drain. A worker that
// stays keeps the stack it grew. ants (github.com/panjf2000/ants/v2) is the
// reused pool: LIFO, so the warmest worker takes the next task, idle ones
// purged after workerLinger.
type workers struct{ pool *ants.Pool }

func newWorkers() workers {
	p, err := ants.NewPool(-1, // unbounded: what bounds tasks is their callers (InFlight, one drain per session)
		ants.WithExpiryDuration(workerLinger),
		// A panicking task took the process down when it ran on its own
		// goroutine; it still does (ants would log and carry on).
		ants.WithPanicHandler(func(p any) { panic(p) }))
	if err != nil {
		return workers{} // cannot happen with these options; plain goroutines then
	}
	return workers{pool: p}
}

// Go runs f on a worker, or on a goroutine of its own once the pool is
// released (sessions ending after Run returned) or in tests without one.
func (w workers) Go(f func()) {
	if w.pool == nil || w.pool.Submit(f) != nil {
		go f()
	}
}

// release lets the idle workers exit; tasks still running finish.
func (w workers) release() {
	if w.pool != nil {
		w.pool.Release()
	}
}
