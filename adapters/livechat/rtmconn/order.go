// Package rtmconn is the RTM connection plumbing the LiveChat agent and
// customer surfaces share, so that both keep one behaviour (§2.2) instead
// of two copies that drift: the websocket session loop (login deadline,
// idle timeout, oversize frames, the *_disconnected push then close), the
// registry of live sessions and its shutdown, the framing of one request
// through a wire.Table, the pipelining of one connection's requests
// (pipeline.go), and the ordering rule "a request's response precedes the
// pushes it causes on its connection".
//
// What differs between the surfaces (push names, reasons, login, pumps,
// token expiry, log names) comes in through Kind and Client; the protocol
// itself (actions, pushes) stays in each surface.
package rtmconn

import (
	"context"
	"strconv"
	"strings"
	"sync"
)

// Order numbers one connection's requests and holds the pushes they cause
// until their response is out, so that clients always see "response, then
// pushes" (those pushes carry the request's request_id). Requests of one
// connection may be in flight concurrently (pipeline.go), so each one has
// its own Ticket and responses may be queued out of request order. A client
// embeds one, initialised with Init before use.
type Order struct {
	// tag prefixes the origin of the notices this connection causes, so
	// that the pushes answering its requests can carry their request_id.
	tag string

	mu   sync.Mutex
	reqs uint64                   // requests begun
	open map[uint64]chan struct{} // begun, response not yet queued; closed when it is
}

// Init prepares the Order; tag must be unique to the connection.
func (o *Order) Init(tag string) {
	o.tag = tag
	o.open = make(map[uint64]chan struct{})
}

// Ticket is one request's place in its connection's Order: its number
// (which goes into the origin of the desk commands it issues) and the
// pushes it defers until its response is queued. A Ticket belongs to the
// goroutine serving its request.
type Ticket struct {
	o     *Order
	n     uint64
	later []func()
}

// Begin starts the next request. Safe for concurrent use.
func (o *Order) Begin() *Ticket {
	o.mu.Lock()
	o.reqs++
	n := o.reqs
	o.open[n] = make(chan struct{})
	o.mu.Unlock()
	return &Ticket{o: o, n: n}
}

// AfterResponse defers a push of the request until its response is queued.
func (t *Ticket) AfterResponse(f func()) { t.later = append(t.later, f) }

// Answered runs the deferred pushes of the request, whose response has
// just been queued, and releases pushes waiting for it in AwaitResponse.
// Call it once.
func (t *Ticket) Answered() {
	later := t.later
	t.later = nil
	for _, f := range later {
		f()
	}
	t.o.mu.Lock()
	ch := t.o.open[t.n]
	delete(t.o.open, t.n)
	t.o.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Origin tags the desk commands of the request:
// "<tag><request number>#<request_id>".
func (t *Ticket) Origin(requestID string) string {
	return t.o.tag + strconv.FormatUint(t.n, 10) + "#" + requestID
}

// AwaitResponse blocks until request n has been answered or ctx ends. A
// request that is not open (answered, or never begun) does not block.
func (o *Order) AwaitResponse(ctx context.Context, n uint64) {
	o.mu.Lock()
	ch := o.open[n]
	o.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// RequestOf returns the number and request_id of the request of this
// connection that caused a notice.
func (o *Order) RequestOf(origin string) (uint64, string, bool) {
	rest, ok := strings.CutPrefix(origin, o.tag)
	if !ok {
		return 0, "", false
	}
	num, rid, ok := strings.Cut(rest, "#")
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil {
		return 0, "", false
	}
	return n, rid, true
}
