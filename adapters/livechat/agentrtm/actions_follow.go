package agentrtm

import (
	"context"
	"errors"
	"fmt"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// ChatUnfollowed is the chat_unfollowed push.
type ChatUnfollowed struct {
	ChatID string `json:"chat_id"`
}

type followRequest struct {
	ID string `json:"id"`
}

// newestThread returns a chat's newest thread whoever may see it.
func (c *agentView) newestThread(ctx context.Context, chatID string) (model.Conversation, error) {
	ids, err := c.s.d.Store().VisitorConversations(ctx, model.VisitorID(chatID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(ids) == 0) {
		return model.Conversation{}, errChatNotFound()
	}
	if err != nil {
		return model.Conversation{}, fmt.Errorf("threads of %s: %w", chatID, err)
	}
	conv, err := c.s.d.Store().Conversation(ctx, ids[len(ids)-1])
	if errors.Is(err, store.ErrNotFound) {
		return conv, errChatNotFound()
	}
	return conv, err
}

// followChat makes the agent follow a chat's active thread: a chat it may
// see, or one of a department it serves (not_found otherwise, as every
// chat out of its reach; chat_inactive without an active thread). From
// then on the agent is told of the thread as if it served it; its
// connections get incoming_chat unless it could see the chat already.
// Following a followed chat succeeds and pushes nothing.
func followChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	conv, err := c.followTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	if !c.canSee(conv) && !c.agent.Serves(conv.Department) {
		return nil, errChatNotFound()
	}
	if !conv.Active() {
		return nil, wire.NewError(wire.ChatInactive)
	}
	_, err = c.s.d.Follow(ctx, conv.ID, c.agent.ID, true, c.origin)
	return nil, err
}

// unfollowChat stops following a chat's newest thread (not_found when the
// agent may not see it); chat_unfollowed goes to the agent's connections.
// Unfollowing a chat not followed succeeds and pushes nothing.
func unfollowChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	conv, err := c.followTarget(ctx, req)
	if err != nil {
		return nil, err
	}
	if !c.canSee(conv) {
		return nil, errChatNotFound()
	}
	_, err = c.s.d.Follow(ctx, conv.ID, c.agent.ID, false, c.origin)
	return nil, err
}

func (c *caller) followTarget(ctx context.Context, req *wire.Request) (model.Conversation, error) {
	var p followRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return model.Conversation{}, err
	}
	if p.ID == "" {
		return model.Conversation{}, wire.Errorf(wire.Validation, "id is required")
	}
	return c.newestThread(ctx, p.ID)
}

// onFollow pushes a follow change to the agent it concerns: incoming_chat
// when it starts following a chat it could not see otherwise,
// chat_unfollowed when it stops.
func (c *client) onFollow(ctx context.Context, n hub.Notice) error {
	f, conv := n.Follow, n.Conv
	if f.Agent != c.agent.ID {
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	if !f.Followed {
		c.Push(rid, "chat_unfollowed", ChatUnfollowed{ChatID: string(conv.Visitor)})
		return nil
	}
	if c.serves(conv) {
		return nil
	}
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{UpTo: conv.LastSeq, Neighbour: c.canSee})
	if err != nil {
		return err
	}
	c.Push(rid, "incoming_chat", IncomingChat{RequesterID: string(c.agent.ID), Chat: c.chatView(&d)})
	return nil
}
