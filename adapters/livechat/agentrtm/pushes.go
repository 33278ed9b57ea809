package agentrtm

import (
	"context"
	"errors"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// Push payloads (§2.8).
type (
	IncomingChat    = wire.IncomingChat
	IncomingEvent   = wire.IncomingEvent
	ChatDeactivated = wire.ChatDeactivated
	TypingIndicator struct {
		AuthorID   string `json:"author_id"`
		Visibility string `json:"visibility"`
		Timestamp  int64  `json:"timestamp"`
		IsTyping   bool   `json:"is_typing"`
	}
	IncomingTyping struct {
		ChatID          string          `json:"chat_id"`
		ThreadID        string          `json:"thread_id"`
		TypingIndicator TypingIndicator `json:"typing_indicator"`
	}
	SneakPeek struct {
		AuthorID  string `json:"author_id"`
		Text      string `json:"text"`
		Timestamp int64  `json:"timestamp"`
	}
	IncomingSneakPeek struct {
		ChatID    string    `json:"chat_id"`
		ThreadID  string    `json:"thread_id"`
		SneakPeek SneakPeek `json:"sneak_peek"`
	}
)

// pump turns the desk's notices into this connection's pushes until ctx
// ends or the subscription does. A subscription the bus cut off (the pump
// fell behind) ends the session with internal_error: the agent app
// reconnects and gets a fresh summary at login.
func (c *client) pump(ctx context.Context, sub *hub.Sub) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			if errors.Is(sub.Err(), hub.ErrSlow) {
				c.s.log.Warn().Str("conn", c.id).Str("agent", string(c.agent.ID)).Msg("agent session fell behind the desk")
				c.bye(reasonInternal)
			}
			return
		case n := <-sub.C():
			if err := c.onNotice(ctx, *n); err != nil && ctx.Err() == nil {
				c.logError(err)
			}
		}
	}
}

// relevant reports whether a notice concerns this agent: a conversation it
// may see, or an unassigned one of its departments that just closed (it
// was shown as queued, so its end must be shown too).
func (c *client) relevant(conv model.Conversation) bool {
	return c.canSee(conv) ||
		(conv.Agent == "" && conv.State == model.StateClosed && c.agent.Serves(conv.Department))
}

// onNotice pushes what one committed change means to this agent:
//
//   - the agent joined (an agent_joined event names it: assigned at start,
//     from the queue, by transfer or by answering a queued chat):
//     incoming_chat with the thread up to that event, then incoming_event
//     for the events after it;
//   - a conversation started queued, or was transferred into the queue, in
//     a department the agent serves: incoming_chat;
//   - otherwise incoming_event per event, then chat_deactivated when the
//     change closed the conversation.
//
// Pushes caused by this connection's own request carry its request_id and
// follow its response.
func (c *client) onNotice(ctx context.Context, n hub.Notice) error {
	conv := n.Conv
	if n.Follow != nil {
		return c.onFollow(ctx, n)
	}
	if n.Ban != nil {
		return c.onBan(ctx, n)
	}
	if n.Member != nil {
		return c.onMember(ctx, n)
	}
	if n.Seen != nil {
		return c.onSeen(ctx, n)
	}
	if n.PrevVisitor != "" {
		return c.onVisitorChanged(ctx, n)
	}
	tr := wire.TransferIn(n.Events)
	if !c.relevant(conv) {
		// The agent a chat was transferred away from is told so.
		if tr != nil && tr.Vars["from_agent"] == string(c.agent.ID) {
			num, rid, mine := c.RequestOf(n.Origin)
			if mine {
				c.AwaitResponse(ctx, num)
			}
			c.Push(rid, "chat_transferred", c.chatTransferred(conv, tr))
		}
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	if tr != nil {
		defer c.Push(rid, "chat_transferred", c.chatTransferred(conv, tr))
	}
	chatID, threadID := string(conv.Visitor), string(conv.ID)
	if n.Props != nil {
		if name, p, ok := wire.RenderPropsPush(n.Props, wire.ForAgent, c.s.d.Properties()); ok {
			c.Push(rid, name, p)
		}
		return nil
	}
	if n.Tag != nil {
		name, p := tagPush(conv, n.Tag)
		c.Push(rid, name, p)
		return nil
	}
	if n.Typing != nil {
		c.pushTyping(conv, n.Typing)
		return nil
	}
	rest := n.Events
	started := n.Created
	// A thread started inactive (start_chat active:false) is told like a
	// queued one, with incoming_chat holding all of it; so is a thread the
	// agent was added to from its start (start_chat chat.users).
	queuedNow := (conv.State == model.StateQueued && (started || hasSubtype(n.Events, model.SysTransferred))) ||
		(conv.State == model.StateClosed && started) || (started && conv.HasMember(c.agent.ID))
	if j := c.joinIndex(n.Events); j >= 0 || queuedNow {
		upTo := conv.LastSeq
		if j >= 0 {
			upTo, rest = n.Events[j].Seq, n.Events[j+1:]
		} else {
			rest = nil
		}
		d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{UpTo: upTo, Neighbour: c.canSee})
		if err != nil {
			return err
		}
		p := IncomingChat{Chat: c.chatView(&d)}
		switch {
		case mine:
			p.RequesterID = string(c.agent.ID)
		case started && conv.HasMember(c.agent.ID) && conv.Agent != "":
			// Only an agent's start_chat adds members from the start.
			p.RequesterID = string(conv.Agent)
		case started:
			p.RequesterID = chatID
		}
		c.Push(rid, "incoming_chat", p)
	}
	for i := range rest {
		c.PushEvent(rid, &IncomingEvent{ChatID: chatID, ThreadID: threadID, Event: wire.RenderEventFor(&rest[i], wire.ForAgent, c.s.d.Properties())})
	}
	// Edits and deletions, whoever made them (issue 12: a visitor's edit
	// on any surface reached customers and webhooks, not agents).
	for _, u := range wire.UpdatedEvents(conv, n.Updated, wire.ForAgent, c.s.d.Properties()) {
		c.Push(rid, "event_updated", u)
	}
	if conv.State == model.StateClosed && hasSubtype(rest, model.SysClosed) {
		p := ChatDeactivated{ChatID: chatID, ThreadID: threadID}
		if by := conv.ClosedBy; by != nil && by.Kind != model.AuthorSystem {
			p.UserID = by.ID
		}
		c.Push(rid, "chat_deactivated", p)
	}
	return nil
}

// onVisitorChanged tells the agent that a thread moved to another
// customer (Rocket.Chat's livechat/room.visitor; desk.ChangeVisitor). A
// LiveChat chat is its customer's (chat_id is the customer id), so the
// thread leaves the previous customer's chat and joins the new one's;
// LiveChat has no push for that, so an active thread is told as it
// would be: chat_deactivated for the old chat, then incoming_chat for
// the new chat with the thread. A closed thread is only seen by reading
// (list_archives, get_chat show the new customer).
func (c *client) onVisitorChanged(ctx context.Context, n hub.Notice) error {
	conv := n.Conv
	if !conv.Active() || !c.canSee(conv) {
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	c.Push(rid, "chat_deactivated", ChatDeactivated{ChatID: string(n.PrevVisitor), ThreadID: string(conv.ID)})
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{UpTo: conv.LastSeq, Neighbour: c.canSee})
	if err != nil {
		return err
	}
	c.Push(rid, "incoming_chat", IncomingChat{Chat: c.chatView(&d)})
	return nil
}

func hasSubtype(evs []model.Event, subtype string) bool {
	for i := range evs {
		if evs[i].Kind == model.KindSystem && evs[i].Subtype == subtype {
			return true
		}
	}
	return false
}

// joinIndex finds the agent_joined event naming this agent, -1 if none.
func (c *client) joinIndex(evs []model.Event) int {
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		if e.Kind == model.KindSystem && e.Subtype == model.SysAssigned && e.Vars["agent_id"] == string(c.agent.ID) {
			return i
		}
	}
	return -1
}

// pushTyping forwards a customer's typing indicator and sneak peek. Agents'
// own indicators are not echoed to agents.
func (c *client) pushTyping(conv model.Conversation, t *hub.Typing) {
	if t.Author.Kind != model.AuthorVisitor {
		return
	}
	now := c.s.d.Now().Unix()
	chatID, threadID := string(conv.Visitor), string(conv.ID)
	c.Push("", "incoming_typing_indicator", IncomingTyping{ChatID: chatID, ThreadID: threadID,
		TypingIndicator: TypingIndicator{AuthorID: t.Author.ID, Visibility: string(model.VisibleAll),
			Timestamp: now, IsTyping: t.On}})
	if t.On && t.Text != "" {
		c.Push("", "incoming_sneak_peek", IncomingSneakPeek{ChatID: chatID, ThreadID: threadID,
			SneakPeek: SneakPeek{AuthorID: t.Author.ID, Text: t.Text, Timestamp: now}})
	}
}

// ChatTransferred is the chat_transferred push (shared with the customer
// API).
type ChatTransferred = wire.ChatTransferred

func (c *client) chatTransferred(conv model.Conversation, tr *model.Event) ChatTransferred {
	return wire.NewChatTransferred(conv, tr, c.s.src.QueuePosition(conv.ID))
}
