package customer

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"chatgate/adapters/livechat/rtmconn"
	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// customer_disconnected reasons chatgate sends (§2.6).
const (
	reasonShutdown = "service_temporarily_unavailable"
	reasonInternal = rtmconn.ReasonInternal
	reasonLicense  = "license_not_found"
	reasonExpired  = "access_token_expired"
	reasonBanned   = "customer_banned"
)

// client is one caller's protocol state: an RTM connection (Out writes to
// the socket) or one Web API request (Web: no pushes). Tests and the
// fuzzer drive it directly.
type client struct {
	s   *Surface
	id  string
	bye func(reason string)
	// Pusher writes frames to the connection (Out: the responses too) or,
	// for a Web API request (Web), discards the pushes.
	wire.Pusher

	rtmconn.Order // response first, then the pushes a request caused
	// cur is the request being served. A customer connection is served one
	// request at a time (client is not rtmconn.Keyed): a customer has one
	// chat, so its requests would be ordered one after the other anyway.
	cur *rtmconn.Ticket
	// deadlines bounds each request (shared timeout contexts).
	deadlines rtmconn.Deadlines

	// Set by login (or by the Web API's token check) before loggedIn.
	loggedIn atomic.Bool
	me       model.VisitorID
	expires  time.Time
	sub      *hub.Sub
}

func (s *Surface) newClient(version string, out func([]byte) error, bye func(string)) *client {
	id := model.NewID()
	c := &client{s: s, id: id, bye: bye}
	c.Pusher = wire.Pusher{Version: version, Out: out, Log: c.logError}
	c.Init(s.Name() + "/" + id + "#")
	return c
}

// serve answers one frame: the response first, then the pushes the request
// caused on this connection.
func (c *client) serve(ctx context.Context, frame []byte) error {
	c.cur = c.Begin()
	err := c.Out(c.respond(ctx, frame))
	c.cur.Answered()
	return err
}

// handle answers one request frame, for tests and the fuzzer; the pushes
// the request deferred are sent after it returns.
func (c *client) handle(ctx context.Context, frame []byte) []byte {
	c.cur = c.Begin()
	defer c.cur.Answered()
	return c.respond(ctx, frame)
}

// respond answers the current request's frame; it never panics on input.
func (c *client) respond(ctx context.Context, frame []byte) []byte {
	lim := rtmconn.Limits{MaxFrame: c.s.cfg.MaxFrame, Timeout: requestTimeout, Version: c.Version, Versions: versions(),
		Deadlines: &c.deadlines}
	return rtmconn.Handle(ctx, frame, lim, c.dispatch, c.logError)
}

// Origin tags the desk commands of the current request.
func (c *client) Origin(requestID string) string { return c.cur.Origin(requestID) }

// AfterResponse defers a push of the current request until its response
// is queued.
func (c *client) AfterResponse(f func()) { c.cur.AfterResponse(f) }

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

// The rtmconn.Client face of the client, for the websocket session.

func (c *client) ID() string                                    { return c.id }
func (c *client) Serve(ctx context.Context, frame []byte) error { return c.serve(ctx, frame) }
func (c *client) LoggedIn() bool                                { return c.loggedIn.Load() }
func (c *client) Logout()                                       { c.logout() }

// Started hands the session the push pump of the subscription login made,
// and arms the token's expiry: the token is checked at login, and the
// session ends when it expires, as LiveChat's does (access_token_expired).
func (c *client) Started() (func(context.Context), func()) {
	expiry := time.AfterFunc(max(c.expires.Sub(c.s.now()), 0), func() { c.bye(reasonExpired) })
	return nil, func() { expiry.Stop() }
}

// Pushes hands the session the subscription login made: its notices are
// delivered on demand (rtmconn.Pusher), so an idle customer holds no
// goroutine for them.
func (c *client) Pushes() (*hub.Sub, func(context.Context, *hub.Notice), func(error)) {
	return c.sub, func(ctx context.Context, n *hub.Notice) {
			if err := c.onNotice(ctx, *n); err != nil && ctx.Err() == nil {
				c.logError(err)
			}
		}, func(err error) {
			if errors.Is(err, hub.ErrSlow) {
				c.s.log.Warn().Str("conn", c.id).Msg("customer session fell behind the desk")
				c.bye(reasonInternal)
			}
		}
}

func (c *client) author() model.Author {
	return model.Author{Kind: model.AuthorVisitor, ID: string(c.me)}
}

// The wire.Actor methods let the actions both APIs share run as the
// customer, who reaches only its own chat (threads, thread).

func (c *client) LatestThread(ctx context.Context, chatID string) (model.Conversation, error) {
	return c.latestThread(ctx, chatID)
}

func (c *client) Thread(ctx context.Context, chatID string, id model.ConvID) (model.Conversation, error) {
	return c.thread(ctx, chatID, id)
}

func (c *client) Author() model.Author              { return c.author() }
func (c *client) OriginOf(req *wire.Request) string { return c.Origin(req.RequestID) }
func (c *client) Desk() *desk.Desk                  { return c.s.d }

func (c *client) logout() {
	if !c.loggedIn.CompareAndSwap(true, false) {
		return
	}
	c.s.log.Info().Str("customer", string(c.me)).Msg("customer session left")
	c.s.clients.Remove(c.me, c)
	if c.sub != nil {
		c.sub.Close()
	}
}
