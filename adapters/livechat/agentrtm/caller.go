package agentrtm

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// agentView is what the actions read about their caller, whatever the
// transport: the surface and the authenticated agent (zero before an RTM
// login).
type agentView struct {
	s     *Surface
	agent model.Agent
}

// caller is one request's caller as an action handler sees it: the
// authenticated agent, the origin tag for the desk commands it issues (so
// that the pushes they cause can carry the request's request_id on the RTM
// connection that sent it), and how to send pushes meant for after the
// response. Handlers are wire.Handler[*caller]: they take the caller and
// the request (its payload), and return the payload or an error; the RTM
// and the Web API only differ in how they build the caller and frame the
// result.
type caller struct {
	agentView
	// conn is the RTM connection; nil on the Web API (RTM-only actions
	// such as login check it).
	conn *client
	// origin tags the desk commands of this request.
	origin string
	// after runs f once the response is on its way (RTM: after it is
	// queued; Web API: right away, as nothing else is sent on the request).
	after func(f func())
}

// The wire.Actor methods let the actions both APIs share run as the agent,
// under the agent's access rule (access.go).

func (c *caller) LatestThread(ctx context.Context, chatID string) (model.Conversation, error) {
	return c.latestThread(ctx, chatID)
}

func (c *caller) Thread(ctx context.Context, chatID string, id model.ConvID) (model.Conversation, error) {
	return c.thread(ctx, chatID, id)
}

func (c *caller) Author() model.Author          { return c.author() }
func (c *caller) OriginOf(*wire.Request) string { return c.origin }
func (c *caller) Desk() *desk.Desk              { return c.s.d }

// errRTMOnly answers an RTM-only action (login, ping) called over the Web
// API.
func errRTMOnly() *wire.Error {
	return wire.Errorf(wire.Validation, "Action is available only over RTM")
}
