package agentrtm

import (
	"context"
	"errors"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// Ban is a ban's length.
type Ban struct {
	Days int `json:"days"`
}

// CustomerBanned is the customer_banned push.
type CustomerBanned struct {
	CustomerID string `json:"customer_id"`
	Ban        Ban    `json:"ban"`
}

type banRequest struct {
	ID  string `json:"id"`
	Ban *Ban   `json:"ban"`
}

// banCustomer bans a customer for ban.days days (1 to desk.MaxBanDays):
// it can no longer log in, start chats or send events (customer_banned),
// its customer connections are closed, and every agent gets
// customer_banned. Unknown customers are not_found; an agent may ban a
// customer only if it may see one of its chats' newest thread, or the
// customer has no chat at all.
func banCustomer(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p banRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	switch {
	case p.ID == "":
		return nil, wire.Errorf(wire.Validation, "id is required")
	case p.Ban == nil:
		return nil, wire.Errorf(wire.Validation, "ban is required")
	case p.Ban.Days < 1 || p.Ban.Days > desk.MaxBanDays:
		return nil, wire.Errorf(wire.Validation, "ban.days must be 1 to %d", desk.MaxBanDays)
	}
	id := model.VisitorID(p.ID)
	if _, err := c.s.d.Store().Visitor(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil, wire.Errorf(wire.NotFound, "Customer not found")
	} else if err != nil {
		return nil, err
	}
	if conv, err := c.newestThread(ctx, p.ID); err == nil {
		if !c.canSee(conv) && !c.agent.Serves(conv.Department) {
			return nil, wire.Errorf(wire.NotFound, "Customer not found")
		}
	} else if we := (*wire.Error)(nil); !errors.As(err, &we) || we.Type != wire.NotFound {
		return nil, err
	}
	_, err := c.s.d.Ban(ctx, id, p.Ban.Days, c.author(), c.origin)
	return nil, err
}

// onBan tells the agent a customer was banned.
func (c *client) onBan(ctx context.Context, n hub.Notice) error {
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	c.Push(rid, "customer_banned", CustomerBanned{CustomerID: string(n.Ban.Visitor), Ban: Ban{Days: n.Ban.Days}})
	return nil
}
