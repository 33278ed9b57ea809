package agentrtm

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
)

// addPropsActions registers update_/delete_ chat/thread/event _properties
// (§2.7), RTM and Web API alike.
func addPropsActions(t wire.Table[*caller]) {
	for name, a := range wire.PropsActions {
		t[name] = wire.Action[*caller]{Handle: func(ctx context.Context, c *caller, req *wire.Request) (any, error) {
			return propsAction(ctx, c, req, a)
		}}
	}
}

// propsAction changes properties of a chat, thread or event the agent may
// see (not_found otherwise), validated against the property configuration
// (validation / authorization errors). The pushes go to the chat's agent
// and customer, each seeing only what it may read.
func propsAction(ctx context.Context, c *caller, req *wire.Request, a wire.PropsAction) (any, error) {
	pr, err := wire.DecodePropsRequest(req, a)
	if err != nil {
		return nil, err
	}
	if a.Location == desk.LocChat {
		_, err = c.latestThread(ctx, pr.ChatID)
	} else {
		_, err = c.thread(ctx, pr.ChatID, pr.Target.Conv)
	}
	if err != nil {
		return nil, err
	}
	if a.Delete {
		return nil, c.s.d.DeleteProperties(ctx, pr.Target, c.author(), pr.Delete, c.origin)
	}
	return nil, c.s.d.UpdateProperties(ctx, pr.Target, c.author(), pr.Set, c.origin)
}
