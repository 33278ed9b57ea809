package agentrtm

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// UserAddedToChat is the user_added_to_chat push.
type UserAddedToChat struct {
	ChatID      string    `json:"chat_id"`
	ThreadID    string    `json:"thread_id"`
	User        wire.User `json:"user"`
	Reason      string    `json:"reason"`
	RequesterID string    `json:"requester_id,omitempty"`
}

// UserRemovedFromChat is the user_removed_from_chat push.
type UserRemovedFromChat struct {
	ChatID      string `json:"chat_id"`
	ThreadID    string `json:"thread_id"`
	UserID      string `json:"user_id"`
	Reason      string `json:"reason"`
	RequesterID string `json:"requester_id,omitempty"`
}

type userToChatRequest struct {
	ChatID     string `json:"chat_id"`
	UserID     string `json:"user_id"`
	UserType   string `json:"user_type"`
	Visibility string `json:"visibility"`
	// Recipients, the seed's name for visibility, is read too, so that an
	// agent meant to stay hidden is never shown because of the name used.
	Recipients string `json:"recipients"`
	// ignore_requester_presence is accepted and ignored.
}

// addUserToChat adds another agent to the active thread of a chat the
// requester serves (desk.SetMember): the added agent sees it and may write
// in it.
//
// user_type customer (§2.7 lists it for add_user_to_chat, not for
// remove_user_from_chat): a chatgate chat is one customer's container of
// threads (chat_id = the customer's id, §2.4 "at most one customer" in
// start_chat), so the only customer a chat can have is its own, who is
// always among its users. Adding it succeeds and changes nothing; adding
// any other customer is a validation error, since sharing one visitor's
// conversation with another would show each their histories.
func addUserToChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	return userToChat(ctx, c, req, true)
}

// removeUserFromChat removes an agent added with add_user_to_chat.
func removeUserFromChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	return userToChat(ctx, c, req, false)
}

func userToChat(ctx context.Context, c *caller, req *wire.Request, add bool) (any, error) {
	var p userToChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	switch {
	case p.ChatID == "":
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	case p.UserID == "":
		return nil, wire.Errorf(wire.Validation, "user_id is required")
	case p.UserType == "":
		return nil, wire.Errorf(wire.Validation, "user_type is required")
	case p.UserType == "customer" && add:
		return nil, addCustomer(ctx, c, p)
	case p.UserType != "agent":
		return nil, wire.Errorf(wire.Validation, "user_type must be agent")
	}
	vis, err := wire.ParseVisibility(p.Visibility, p.Recipients)
	if err != nil {
		return nil, err
	}
	conv, err := c.latestThread(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, wire.NewError(wire.ChatInactive)
	}
	if _, ok := c.s.d.Router().Agent(model.AgentID(p.UserID)); !ok {
		return nil, wire.Errorf(wire.NotFound, "Agent not found")
	}
	if !add && !conv.HasMember(model.AgentID(p.UserID)) && conv.Agent != model.AgentID(p.UserID) {
		return nil, wire.Errorf(wire.NotFound, "User is not in the chat")
	}
	_, err = c.s.d.SetMember(ctx, conv.ID, model.AgentID(p.UserID), add, vis, c.author(), c.origin)
	return nil, err
}

// onMember pushes a membership change: the added agent first gets
// incoming_chat (unless it could see the chat already); every agent who
// sees the chat (and the removed one) gets user_added_to_chat /
// user_removed_from_chat.
func (c *client) onMember(ctx context.Context, n hub.Notice) error {
	m, conv := n.Member, n.Conv
	me := m.Agent == c.agent.ID
	if !c.relevant(conv) && !(me && !m.Added) {
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	requester := ""
	if m.By.Kind == model.AuthorAgent {
		requester = m.By.ID
	}
	chatID, threadID := string(conv.Visitor), string(conv.ID)
	if !m.Added {
		c.Push(rid, "user_removed_from_chat", UserRemovedFromChat{ChatID: chatID, ThreadID: threadID,
			UserID: string(m.Agent), Reason: "manual", RequesterID: requester})
		return nil
	}
	sawIt := conv.FollowedBy(c.agent.ID) ||
		(conv.State == model.StateQueued && conv.Agent == "" && c.agent.Serves(conv.Department))
	if me && !sawIt {
		d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{UpTo: conv.LastSeq, Neighbour: c.canSee})
		if err != nil {
			return err
		}
		c.Push(rid, "incoming_chat", IncomingChat{RequesterID: requester, Chat: c.chatView(&d)})
	}
	if a, ok := c.s.d.Router().Agent(m.Agent); ok {
		c.Push(rid, "user_added_to_chat", UserAddedToChat{ChatID: chatID, ThreadID: threadID,
			User: wire.AgentUser(&a, true, wire.ForAgent), Reason: "manual", RequesterID: requester})
	}
	return nil
}

// addCustomer is add_user_to_chat with user_type customer (see
// addUserToChat): the chat must be one the agent may act on, as for
// agents, and the customer must be the chat's own.
func addCustomer(ctx context.Context, c *caller, p userToChatRequest) error {
	if vis, err := wire.ParseVisibility(p.Visibility, p.Recipients); err != nil {
		return err
	} else if vis == model.VisibleAgents {
		return wire.Errorf(wire.Validation, "a customer is added with visibility all")
	}
	conv, err := c.latestThread(ctx, p.ChatID)
	if err != nil {
		return err
	}
	if !conv.Active() {
		return wire.NewError(wire.ChatInactive)
	}
	if p.UserID != string(conv.Visitor) {
		return wire.Errorf(wire.Validation, "A chat has one customer: only its own customer may be added")
	}
	return nil
}
