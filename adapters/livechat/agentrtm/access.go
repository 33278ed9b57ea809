package agentrtm

import (
	"context"
	"errors"
	"fmt"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/store"
)

// canSee reports whether the agent may see a conversation: the one rule
// of model.Agent.MaySee (it serves it, may take it from the queue, or
// follows it), plus the unserved archives of its departments, plus, for
// supervisors and admins, every conversation of their departments
// (model.Agent.Supervises): list_chats, get_chat and the pushes show them
// other agents' chats, and they may take them over (transfer_chat) or join
// them (add_user_to_chat); writing into one (send_event, deactivate_chat)
// still needs serving it: the desk refuses others with authorization.
func (c *agentView) canSee(conv model.Conversation) bool {
	return c.agent.MaySee(conv) || c.unservedArchive(conv) || c.agent.Supervises(conv)
}

// unservedArchive reports whether conv is an archive of the agent's
// departments that no agent ever served (an offline message, a chat its
// visitor left while queued): every agent of the department reads those,
// as LiveChat shows a group's archives to the group's agents. Archives
// another agent served stay that agent's, relayed ones the upstream
// desk's. Reading is all: the customer tokens an agent may obtain still
// follow MaySee alone.
func (c *agentView) unservedArchive(conv model.Conversation) bool {
	return conv.State == model.StateClosed && conv.Agent == "" && conv.Owner == "" && c.agent.Serves(conv.Department)
}

// serves is canSee without following: the agent serves the conversation
// (or was added to it), may take it from the queue, or it is an unserved
// archive of its departments.
func (c *agentView) serves(conv model.Conversation) bool {
	if conv.HasMember(c.agent.ID) {
		return true
	}
	if conv.Agent != "" {
		return conv.Agent == c.agent.ID
	}
	return (conv.State == model.StateQueued && c.agent.Serves(conv.Department)) || c.unservedArchive(conv)
}

// errChatNotFound answers every chat the agent may not see, existing or
// not, the same way.
func errChatNotFound() *wire.Error { return wire.Errorf(wire.NotFound, "Chat not found") }

// latestThread returns a chat's newest thread (the only one that can be
// active) if the agent may see it. On bbolt the store answers from an
// exact cache (store.LatestConversation), without listing the chat's
// threads.
func (c *agentView) latestThread(ctx context.Context, chatID string) (model.Conversation, error) {
	conv, err := store.LatestConversation(ctx, c.s.d.Store(), model.VisitorID(chatID))
	if errors.Is(err, store.ErrNotFound) {
		return model.Conversation{}, errChatNotFound()
	}
	if err != nil {
		return model.Conversation{}, fmt.Errorf("newest thread of %s: %w", chatID, err)
	}
	if string(conv.Visitor) != chatID || !c.canSee(conv) {
		return model.Conversation{}, errChatNotFound()
	}
	return conv, nil
}

// thread returns one thread of a chat if the agent may see it.
func (c *agentView) thread(ctx context.Context, chatID string, id model.ConvID) (model.Conversation, error) {
	conv, err := c.s.d.Store().Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return conv, errChatNotFound()
	}
	if err != nil {
		return conv, fmt.Errorf("thread %s: %w", id, err)
	}
	if string(conv.Visitor) != chatID || !c.canSee(conv) {
		return model.Conversation{}, errChatNotFound()
	}
	return conv, nil
}

// visibleChats lists the chats whose newest thread the agent may see
// (activeOnly: and that thread is active), one conversation per chat.
//
// It scans every conversation: the store has no index by agent or state
// yet (see the package report); fine for one node's worth of chats.
func (c *agentView) visibleChats(ctx context.Context, activeOnly bool) ([]model.Conversation, error) {
	latest := make(map[model.VisitorID]model.Conversation)
	err := c.s.d.Store().Conversations(ctx, func(conv model.Conversation) bool {
		if cur, ok := latest[conv.Visitor]; !ok || newer(conv, cur) {
			latest[conv.Visitor] = conv
		}
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("scan conversations: %w", err)
	}
	out := make([]model.Conversation, 0, len(latest))
	for _, conv := range latest {
		if c.canSee(conv) && (!activeOnly || conv.Active()) {
			out = append(out, conv)
		}
	}
	return out, nil
}

// newer orders a visitor's conversations; ids are time-ordered ULIDs and
// break ties.
func newer(a, b model.Conversation) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// chatView renders a chat as this agent sees it (is_followed is the
// agent's own).
func (c *agentView) chatView(d *wire.ChatData) wire.Chat {
	ch := wire.RenderChat(d, wire.ForAgent)
	ch.IsFollowed = d.Conv.FollowedBy(c.agent.ID)
	return ch
}

// summaryEvents is how many of a thread's latest events a chat summary
// reads to fill last_event_per_type.
const summaryEvents = 50

func (c *agentView) summary(ctx context.Context, conv model.Conversation) (wire.ChatSummary, error) {
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Last: summaryEvents})
	if err != nil {
		return wire.ChatSummary{}, err
	}
	s := wire.RenderAgentSummary(&d)
	s.IsFollowed = conv.FollowedBy(c.agent.ID)
	return s, nil
}

// summaries renders the visible chats, newest thread first.
func (c *agentView) summaries(ctx context.Context, activeOnly bool) ([]wire.ChatSummary, error) {
	convs, err := c.visibleChats(ctx, activeOnly)
	if err != nil {
		return nil, err
	}
	sortChats(convs, orderDesc)
	out := make([]wire.ChatSummary, 0, len(convs))
	for _, conv := range convs {
		s, err := c.summary(ctx, conv)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
