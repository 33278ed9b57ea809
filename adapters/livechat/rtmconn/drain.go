package rtmconn

import (
	"context"
	"sync"

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

// startDrainer delivers p's pushes on demand (adapters/internal/subdrain:
// a goroutine only while notices are queued, in order, one at a time).
// The drain goroutine lingers as a request goroutine does (offloadLinger):
// a conversing connection gets pushes every few hundred milliseconds or
// sooner, and a drain started per burst grew its fresh stack again on
// every push (rendering an event runs deep); see docs/performance.md,
// "Round 5: the customer path".
func startDrainer(ctx context.Context, p Pusher, wg *sync.WaitGroup) *subdrain.Drainer {
	sub, handle, ended := p.Pushes()
	return subdrain.StartLinger(ctx, sub, handle, ended, wg, offloadLinger)
}
