package agentrtm

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// client is one connection's protocol state, independent of the transport:
// it takes request frames and returns response frames, and emits pushes
// through out. A websocket session drives it in production; tests and the
// fuzzer drive it directly.
type client struct {
	agentView // agent: set by login before loggedIn becomes true
	id        string
	version   string // the connection's API version, from the URL
	// tag prefixes the origin of the notices this connection causes, so
	// that the pushes answering its requests can carry their request_id.
	tag string
	out func([]byte) error
	bye func(reason string)

	// Requests are numbered; the number goes into the origin of the
	// notices a request causes, so that the pump can hold their pushes
	// until the request's response is out (response first, then pushes).
	reqs     uint64        // requests handled; reader goroutine only
	answered atomic.Uint64 // last request whose response was queued
	wake     chan struct{} // signalled when answered moves
	later    []func()      // pushes a handler defers until after its response

	// Set by login before loggedIn becomes true; read-only afterwards.
	loggedIn atomic.Bool
	pushes   map[string]bool // nil: every push
	sub      *hub.Sub
}

func (s *Surface) newClient(version string, out func([]byte) error, bye func(string)) *client {
	id := model.NewID()
	return &client{agentView: agentView{s: s}, id: id, version: version, tag: s.Name() + "/" + id + "#", out: out, bye: bye,
		wake: make(chan struct{}, 1)}
}

// serve answers one request frame through out: first the response, then
// the pushes the request caused on this connection (held back until now),
// so that clients see "response, then pushes" every time.
func (c *client) serve(ctx context.Context, frame []byte) error {
	resp := c.handle(ctx, frame)
	err := c.out(resp)
	later := c.later
	c.later = nil
	for _, f := range later {
		f()
	}
	c.answered.Store(c.reqs)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return err
}

// afterResponse defers a push of the current request until its response is
// queued.
func (c *client) afterResponse(f func()) { c.later = append(c.later, f) }

// awaitResponse blocks until request n has been answered or ctx ends.
func (c *client) awaitResponse(ctx context.Context, n uint64) {
	for c.answered.Load() < n {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
	}
}

// handle answers one request frame. It never panics on input and always
// returns a response frame.
func (c *client) handle(ctx context.Context, frame []byte) []byte {
	c.reqs++
	c.later = nil
	var resp wire.Response
	if len(frame) > c.s.cfg.MaxFrame {
		resp = wire.Fail(wire.PeekRequest(frame),
			wire.Errorf(wire.EntityTooLarge, "Frame exceeds %d bytes", c.s.cfg.MaxFrame))
	} else if req, werr := wire.DecodeRequest(frame); werr != nil {
		resp = wire.Fail(req, werr)
	} else if werr := c.checkVersion(req.Version); werr != nil {
		resp = wire.Fail(req, werr)
	} else {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		k := &caller{agentView: c.agentView, conn: c, origin: c.origin(req.RequestID), after: c.afterResponse}
		resp = c.s.actions.Dispatch(rctx, k, c.loggedIn.Load(), req, c.logError)
		cancel()
	}
	b, err := wire.Encode(resp)
	if err != nil {
		c.logError(err)
		b, _ = wire.Encode(wire.Fail(&wire.Request{RequestID: resp.RequestID, Action: resp.Action}, wire.NewError(wire.Internal)))
	}
	return b
}

func (c *client) logError(err error) {
	l := c.s.log.Error().Err(err).Str("conn", c.id)
	if c.loggedIn.Load() {
		l = l.Str("agent", string(c.agent.ID))
	}
	l.Msg("agent rtm request failed")
}

// checkVersion applies §2.2: a request may name a higher version than the
// connection's, never a lower one, and only one chatgate serves.
func (c *client) checkVersion(v string) *wire.Error {
	if v == "" {
		return nil
	}
	want, ok := minor(v)
	have, _ := minor(c.version)
	all := versions()
	top, _ := minor(all[len(all)-1])
	if !ok || want < have || want > top {
		return wire.NewError(wire.UnsupportedVersion)
	}
	return nil
}

// minor parses "3.N" (optionally "v3.N") into N.
func minor(v string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(v, "v"), "3.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// origin tags the desk commands of the current request:
// "<tag><request number>#<request_id>".
func (c *client) origin(requestID string) string {
	return c.tag + strconv.FormatUint(c.reqs, 10) + "#" + requestID
}

// requestOf returns the number and request_id of the request of this
// connection that caused a notice.
func (c *client) requestOf(origin string) (uint64, string, bool) {
	rest, ok := strings.CutPrefix(origin, c.tag)
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

// push sends a push frame unless the client's login narrowed its pushes.
func (c *client) push(requestID, action string, payload any) {
	if c.pushes != nil && !c.pushes[action] {
		return
	}
	f, err := wire.Encode(wire.NewPush(c.version, requestID, action, payload))
	if err != nil {
		c.logError(err)
		return
	}
	_ = c.out(f) // a full queue closes the session; nothing else to do here
}

// author is the authenticated agent as the author of desk commands.
func (c *agentView) author() model.Author {
	return model.Author{Kind: model.AuthorAgent, ID: string(c.agent.ID), Name: c.agent.Name}
}

// logout undoes login: presence, registry, subscription. Idempotent.
func (c *client) logout() {
	if !c.loggedIn.CompareAndSwap(true, false) {
		return
	}
	c.s.unregister(c)
	c.sub.Close()
	c.s.d.AgentConnected(c.agent.ID, false)
}
