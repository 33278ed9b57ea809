package rtmconn

import (
	"context"
	"sync"
	"time"

	"chatgate/adapters/internal/subdrain"
	"chatgate/core/hub"
)

// Pusher is a Client whose pushes all come from one hub subscription. The
// session then delivers them on demand: a goroutine runs only while
// notices are queued, instead of one blocked on the subscription for the
// whole life of the connection (8 KiB of stack for every idle, logged-in
// connection; see docs/performance.md).
type Pusher interface {
	Client
	// Pushes is called once, with Started; handle is called for each
	// notice in order, one at a time, and ended once when the
	// subscription ends (cut off as too slow, or closed by Logout).
	Pushes() (sub *hub.Sub, handle func(context.Context, *hub.Notice), ended func(error))
}

// drainLinger is how long a goroutine of a registry's drain pool waits
// for the next drain, of any session, before it exits.
const drainLinger = time.Second

// startDrainer delivers p's pushes on demand (adapters/internal/subdrain:
// a goroutine only while notices are queued, in order, one at a time),
// run by pool, the registry's (nil: a goroutine of its own per drain). A
// drain started on a fresh goroutine per burst grew its stack again on
// nearly every push (rendering an event runs deep): a conversing customer
// gets two pushes per round trip (the echo of its own event, the agent's
// answer); the pool's lingering goroutines keep theirs. See
// docs/performance.md, "Round 5: the customer path".
func startDrainer(ctx context.Context, p Pusher, wg *sync.WaitGroup, pool *subdrain.Pool) *subdrain.Drainer {
	sub, handle, ended := p.Pushes()
	return pool.Start(ctx, sub, handle, ended, wg)
}
