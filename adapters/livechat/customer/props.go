package customer

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
)

// addPropsActions registers update_/delete_ chat/thread/event _properties
// (§2.5), RTM and Web API alike.
func addPropsActions(t wire.Table[*client]) {
	for name, a := range wire.PropsActions {
		t[name] = wire.Action[*client]{Handle: func(ctx context.Context, c *client, req *wire.Request) (any, error) {
			return propsAction(ctx, c, req, a)
		}}
	}
}

// propsAction changes properties of the customer's own chat, one of its
// threads or one of their events (not_found for anything else), validated
// against the property configuration.
func propsAction(ctx context.Context, c *client, req *wire.Request, a wire.PropsAction) (any, error) {
	pr, err := wire.DecodePropsRequest(req, a)
	if err != nil {
		return nil, err
	}
	if a.Location == desk.LocChat {
		_, err = c.threads(ctx, pr.ChatID)
	} else {
		_, err = c.thread(ctx, pr.ChatID, pr.Target.Conv)
	}
	if err != nil {
		return nil, err
	}
	if a.Delete {
		return nil, c.s.d.DeleteProperties(ctx, pr.Target, c.author(), pr.Delete, c.Origin(req.RequestID))
	}
	return nil, c.s.d.UpdateProperties(ctx, pr.Target, c.author(), pr.Set, c.Origin(req.RequestID))
}
