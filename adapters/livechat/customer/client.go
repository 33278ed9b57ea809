package customer

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// client is one caller's protocol state: an RTM connection (out writes to
// the socket) or one Web API request (out discards pushes). Tests and the
// fuzzer drive it directly.
type client struct {
	s       *Surface
	id      string
	version string
	tag     string
	out     func([]byte) error
	bye     func(reason string)
	web     bool

	reqs     uint64
	answered atomic.Uint64
	wake     chan struct{}
	later    []func()

	// Set by login (or by the Web API's token check) before loggedIn.
	loggedIn atomic.Bool
	me       model.VisitorID
	expires  time.Time
	pushes   map[string]bool
	sub      *hub.Sub
}

func (s *Surface) newClient(version string, out func([]byte) error, bye func(string)) *client {
	id := model.NewID()
	return &client{s: s, id: id, version: version, tag: s.Name() + "/" + id + "#", out: out, bye: bye,
		wake: make(chan struct{}, 1)}
}

// serve answers one frame: the response first, then the pushes the request
// caused on this connection.
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

func (c *client) afterResponse(f func()) { c.later = append(c.later, f) }

func (c *client) awaitResponse(ctx context.Context, n uint64) {
	for c.answered.Load() < n {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		}
	}
}

// handle answers one request frame; it never panics on input.
func (c *client) handle(ctx context.Context, frame []byte) []byte {
	c.reqs++
	c.later = nil
	var resp wire.Response
	if len(frame) > c.s.cfg.MaxFrame {
		resp = wire.Fail(wire.PeekRequest(frame), wire.Errorf(wire.EntityTooLarge, "Frame exceeds %d bytes", c.s.cfg.MaxFrame))
	} else if req, werr := wire.DecodeRequest(frame); werr != nil {
		resp = wire.Fail(req, werr)
	} else if werr := c.checkVersion(req.Version); werr != nil {
		resp = wire.Fail(req, werr)
	} else {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp = c.dispatch(rctx, req)
		cancel()
	}
	b, err := wire.Encode(resp)
	if err != nil {
		c.logError(err)
		b, _ = wire.Encode(wire.Fail(&wire.Request{RequestID: resp.RequestID, Action: resp.Action}, wire.NewError(wire.Internal)))
	}
	return b
}

// dispatch runs an action; the token is re-checked on every request.
func (c *client) dispatch(ctx context.Context, req *wire.Request) wire.Response {
	if c.loggedIn.Load() && !c.s.now().Before(c.expires) {
		return wire.Fail(req, wire.Errorf(wire.Authentication, "Access token expired"))
	}
	return c.s.actions.Dispatch(ctx, c, c.loggedIn.Load(), req, c.logError)
}

func (c *client) logError(err error) {
	c.s.log.Error().Err(err).Str("conn", c.id).Str("customer", string(c.me)).Msg("customer request failed")
}

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

func minor(v string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(v, "v"), "3.")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func (c *client) origin(requestID string) string {
	return c.tag + strconv.FormatUint(c.reqs, 10) + "#" + requestID
}

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

func (c *client) push(requestID, action string, payload any) {
	if c.web || (c.pushes != nil && !c.pushes[action]) {
		return
	}
	f, err := wire.Encode(wire.NewPush(c.version, requestID, action, payload))
	if err != nil {
		c.logError(err)
		return
	}
	_ = c.out(f)
}

func (c *client) author() model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(c.me)}
}

func (c *client) logout() {
	if !c.loggedIn.CompareAndSwap(true, false) {
		return
	}
	c.s.unregister(c)
	if c.sub != nil {
		c.sub.Close()
	}
}
