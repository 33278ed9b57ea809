// Package rtmconn is the RTM connection plumbing the LiveChat agent and
// customer surfaces share, so that both keep one behaviour (§2.2) instead
// of two copies that drift: the websocket session loop (login deadline,
// idle timeout, oversize frames, the *_disconnected push then close), the
// registry of live sessions and its shutdown, the framing of one request
// through a wire.Table, and the ordering rule "a request's response
// precedes the pushes it causes on its connection".
//
// What differs between the surfaces (push names, reasons, login, pumps,
// token expiry, log names) comes in through Kind and Client; the protocol
// itself (actions, pushes) stays in each surface.
package rtmconn

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
)

// Order numbers one connection's requests and holds the pushes they cause
// until their response is out, so that clients always see "response, then
// pushes" (those pushes carry the request's request_id). A client embeds
// one, initialised with Init before use.
type Order struct {
	// tag prefixes the origin of the notices this connection causes, so
	// that the pushes answering its requests can carry their request_id.
	tag      string
	reqs     uint64        // requests begun; reader goroutine only
	answered atomic.Uint64 // last request whose response was queued
	wake     chan struct{} // signalled when answered moves
	later    []func()      // pushes a handler defers until after its response
}

// Init prepares the Order; tag must be unique to the connection.
func (o *Order) Init(tag string) {
	o.tag = tag
	o.wake = make(chan struct{}, 1)
}

// Begin starts the next request (reader goroutine only).
func (o *Order) Begin() {
	o.reqs++
	o.later = nil
}

// AfterResponse defers a push of the current request until its response is
// queued.
func (o *Order) AfterResponse(f func()) { o.later = append(o.later, f) }

// Answered runs the deferred pushes of the current request, whose response
// has just been queued, and releases pushes waiting in AwaitResponse.
func (o *Order) Answered() {
	later := o.later
	o.later = nil
	for _, f := range later {
		f()
	}
	o.answered.Store(o.reqs)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// AwaitResponse blocks until request n has been answered or ctx ends.
func (o *Order) AwaitResponse(ctx context.Context, n uint64) {
	for o.answered.Load() < n {
		select {
		case <-o.wake:
		case <-ctx.Done():
			return
		}
	}
}

// Origin tags the desk commands of the current request:
// "<tag><request number>#<request_id>".
func (o *Order) Origin(requestID string) string {
	return o.tag + strconv.FormatUint(o.reqs, 10) + "#" + requestID
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
