package agentrtm

import (
	"context"
	"sync/atomic"

	"chatgate/adapters/livechat/rtmconn"
	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// agent_disconnected reasons chatgate sends (§2.8).
const (
	reasonByServer = "agent_disconnected_by_server"
	reasonInternal = rtmconn.ReasonInternal
)

// client is one connection's protocol state, independent of the transport:
// it takes request frames and returns response frames, and emits pushes
// through Out. A websocket session (package rtmconn) drives it in production;
// tests and the fuzzer drive it directly.
type client struct {
	agentView // agent: set by login before loggedIn becomes true
	id        string
	bye       func(reason string)
	// Pusher writes frames to the connection: the pushes (narrowed by
	// login's Only) and, through Out, the responses.
	wire.Pusher

	// Requests are numbered; the number goes into the origin of the
	// notices a request causes, so that the pump can hold their pushes
	// until the request's response is out (response first, then pushes).
	rtmconn.Order
	// deadlines bounds each request (shared timeout contexts).
	deadlines rtmconn.Deadlines

	// Set by login before loggedIn becomes true; read-only afterwards.
	loggedIn atomic.Bool
	sub      *hub.Sub
}

func (s *Surface) newClient(version string, out func([]byte) error, bye func(string)) *client {
	id := model.NewID()
	c := &client{agentView: agentView{s: s}, id: id, bye: bye}
	c.Pusher = wire.Pusher{Version: version, Out: out, Log: c.logError}
	c.Init(s.Name() + "/" + id + "#")
	return c
}

// serve answers one request frame through Out: first the response, then
// the pushes the request caused on this connection (held back until now),
// so that clients see "response, then pushes" every time. The session may
// call it for several requests at once (OrderKey).
func (c *client) serve(ctx context.Context, frame []byte) error {
	t := c.Begin()
	err := c.Out(c.respond(ctx, t, frame))
	t.Answered()
	return err
}

// handle answers one request frame, for tests and the fuzzer: the pushes
// the request deferred are sent after it returns.
func (c *client) handle(ctx context.Context, frame []byte) []byte {
	t := c.Begin()
	defer t.Answered()
	return c.respond(ctx, t, frame)
}

// respond answers one request frame. It never panics on input and always
// returns a response frame.
func (c *client) respond(ctx context.Context, t *rtmconn.Ticket, frame []byte) []byte {
	lim := rtmconn.Limits{MaxFrame: c.s.cfg.MaxFrame, Timeout: requestTimeout, Version: c.Version, Versions: versions(),
		Deadlines: &c.deadlines}
	return rtmconn.Handle(ctx, frame, lim, func(ctx context.Context, req *wire.Request) wire.Response {
		k := &caller{agentView: c.agentView, conn: c, origin: t.Origin(req.RequestID), after: t.AfterResponse}
		return c.s.actions.Dispatch(ctx, k, c.loggedIn.Load(), req, c.logError)
	}, c.logError)
}

func (c *client) logError(err error) {
	l := c.s.log.Error().Err(err).Str("conn", c.id)
	if c.loggedIn.Load() {
		l = l.Str("agent", string(c.agent.ID))
	}
	l.Msg("agent rtm request failed")
}

// The rtmconn.Client face of the client, for the websocket session.

func (c *client) ID() string                                    { return c.id }
func (c *client) Serve(ctx context.Context, frame []byte) error { return c.serve(ctx, frame) }
func (c *client) LoggedIn() bool                                { return c.loggedIn.Load() }
func (c *client) Logout()                                       { c.logout() }

// OrderKey keys a request by its chat (rtmconn.Keyed): "chat:<id>" for
// the actions whose effect is confined to the chat their payload names, so
// that the session may run them concurrently with requests about other
// chats; "" (serve alone, in order with everything) for every other action
// and anything that does not parse. Ping is keyed on its own so that
// keep-alives do not stall the requests in flight.
func (c *client) OrderKey(frame []byte) string {
	var f struct {
		Action  string `json:"action"`
		Payload struct {
			ChatID string `json:"chat_id"`
			ID     string `json:"id"`
		} `json:"payload"`
	}
	if len(frame) > c.s.cfg.MaxFrame || wire.Unmarshal(frame, &f) != nil {
		return ""
	}
	if f.Action == "ping" {
		return "ping"
	}
	var id string
	switch f.Action {
	case "send_event", "send_typing_indicator", "mark_events_as_seen", "get_chat", "tag_thread", "untag_thread":
		id = f.Payload.ChatID
	case "deactivate_chat":
		id = f.Payload.ID
	}
	if id == "" {
		return ""
	}
	return "chat:" + id
}

// Started hands the session the push pump of the subscription login made.
func (c *client) Started() (func(context.Context), func()) {
	sub := c.sub
	return func(ctx context.Context) { c.pump(ctx, sub) }, nil
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
	c.s.log.Info().Str("agent", string(c.agent.ID)).Msg("agent session left")
	c.s.clients.Remove(c.agent.ID, c)
	c.sub.Close()
	c.s.d.AgentConnected(c.agent.ID, false)
}
