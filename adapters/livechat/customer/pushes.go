package customer

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// Push payloads (§2.6).
type (
	IncomingChat    = wire.IncomingChat
	IncomingEvent   = wire.IncomingEvent
	ChatDeactivated = wire.ChatDeactivated
	UserAdded       struct {
		ChatID   string    `json:"chat_id"`
		ThreadID string    `json:"thread_id"`
		User     wire.User `json:"user"`
		Reason   string    `json:"reason"`
	}
	UserRemoved struct {
		ChatID   string `json:"chat_id"`
		ThreadID string `json:"thread_id"`
		UserID   string `json:"user_id"`
		Reason   string `json:"reason"`
	}
	EventsMarkedAsSeen = wire.EventsMarkedAsSeen
	TypingIndicator    struct {
		AuthorID   string `json:"author_id"`
		Recipients string `json:"recipients"`
		Timestamp  int64  `json:"timestamp"`
		IsTyping   bool   `json:"is_typing"`
	}
	IncomingTyping struct {
		ChatID          string          `json:"chat_id"`
		ThreadID        string          `json:"thread_id"`
		TypingIndicator TypingIndicator `json:"typing_indicator"`
	}
)

// onNotice pushes one committed change of the customer's chat:
//
//   - a new thread: incoming_chat (the thread as the customer sees it);
//   - an agent joining: user_added_to_chat, then the system message;
//   - events: incoming_event each (agents-only events skipped);
//   - edited or deleted events: event_updated; a transfer:
//     chat_transferred; closing: chat_deactivated;
//   - an agent's typing indicator: incoming_typing_indicator.
//
// Pushes answering this connection's request (incoming_chat for
// start/resume_chat, the incoming_event of send_event, chat_deactivated of
// deactivate_chat) carry its request_id and follow its response; other
// pushes it causes (the closing system message, user_added_to_chat) carry
// none, since customer-sdk 4.0.2 crashes on a tagged incoming_event it is
// not waiting for.
func (c *client) onNotice(ctx context.Context, n hub.Notice) error {
	conv := n.Conv
	if conv.Visitor != c.me {
		return nil
	}
	num, rid, mine := c.RequestOf(n.Origin)
	if mine {
		c.AwaitResponse(ctx, num)
	}
	if n.Ban != nil {
		// Banned: the session ends (customer_disconnected, reason
		// customer_banned; the SDK does not reconnect).
		c.bye(reasonBanned)
		return nil
	}
	if m := n.Member; m != nil {
		// Untagged, as user_added_to_chat on assignment.
		if m.Visibility != model.VisibleAgents {
			if m.Added {
				if a, ok := c.s.d.Router().Agent(m.Agent); ok {
					c.Push("", "user_added_to_chat", UserAdded{ChatID: string(conv.Visitor), ThreadID: string(conv.ID),
						User: wire.AgentUser(&a, true, wire.ForCustomer), Reason: "manual"})
				}
			} else {
				c.Push("", "user_removed_from_chat", UserRemoved{ChatID: string(conv.Visitor), ThreadID: string(conv.ID),
					UserID: string(m.Agent), Reason: "manual"})
			}
		}
		return nil
	}
	if s := n.Seen; s != nil {
		// The customer's own marker (tagged when it answers this
		// connection's request) and those of the agents it is shown.
		if s.Kind == model.AuthorAgent && conv.MemberHidden(model.AgentID(s.User)) {
			return nil
		}
		c.Push(rid, "events_marked_as_seen", EventsMarkedAsSeen{UserID: s.User, ChatID: string(conv.Visitor), SeenUpTo: wire.Time(s.UpTo)})
		return nil
	}
	if n.Tag != nil || n.Follow != nil {
		// Tags and followers are the desk's: customers are never told.
		return nil
	}
	chatID, threadID := string(conv.Visitor), string(conv.ID)
	if n.Props != nil {
		// Untagged, as user_added_to_chat: the SDK takes a tagged push
		// for the answer of a pending request.
		if name, p, ok := wire.RenderPropsPush(n.Props, wire.ForCustomer, c.s.d.Properties()); ok {
			c.Push("", name, p)
		}
		return nil
	}
	if t := n.Typing; t != nil {
		if t.Author.Kind == model.AuthorAgent {
			c.Push("", "incoming_typing_indicator", IncomingTyping{ChatID: chatID, ThreadID: threadID,
				TypingIndicator: TypingIndicator{AuthorID: t.Author.ID, Recipients: string(model.VisibleAll),
					Timestamp: c.s.d.Now().Unix(), IsTyping: t.On}})
		}
		return nil
	}
	rest := n.Events
	// The change that created the thread, with its first events or
	// without any (told by the desk: see hub.Notice.Created).
	started := n.Created
	if started {
		d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{UpTo: conv.LastSeq, Neighbour: c.mine})
		if err != nil {
			return err
		}
		c.Push(rid, "incoming_chat", IncomingChat{RequesterID: chatID, Chat: wire.RenderChat(&d, wire.ForCustomer)})
		rest = nil
	}
	for i := range rest {
		e := &rest[i]
		if !wire.Visible(e, wire.ForCustomer) {
			continue
		}
		if e.Kind == model.KindSystem && e.Subtype == model.SysAssigned {
			if a, ok := c.s.d.Router().Agent(model.AgentID(e.Vars["agent_id"])); ok {
				c.Push("", "user_added_to_chat", UserAdded{ChatID: chatID, ThreadID: threadID,
					User: wire.AgentUser(&a, true, wire.ForCustomer), Reason: "manual"})
			}
		}
		// Only the event a send_event created carries its request_id: the
		// SDK treats a tagged incoming_event as the answer to a pending
		// request and fails on one it no longer waits for (e.g. the
		// system message of deactivate_chat).
		erid := ""
		if e.Author.Kind == model.AuthorVisitor {
			erid = rid
		}
		c.PushEvent(erid, &IncomingEvent{ChatID: chatID, ThreadID: threadID, Event: wire.RenderEventFor(e, wire.ForCustomer, c.s.d.Properties())})
	}
	for _, u := range wire.UpdatedEvents(conv, n.Updated, wire.ForCustomer, c.s.d.Properties()) {
		c.Push("", "event_updated", u)
	}
	if tr := wire.TransferIn(rest); tr != nil {
		// After the transfer's system message and the new agent's
		// user_added_to_chat, as on the agent API; untagged, since the
		// customer asked nothing (customer-sdk emits chat_transferred).
		c.Push("", "chat_transferred", wire.NewChatTransferred(conv, tr, c.s.src.QueuePosition(conv.ID)))
	}
	if conv.State == model.StateClosed && closes(rest) {
		p := ChatDeactivated{ChatID: chatID, ThreadID: threadID}
		if by := conv.ClosedBy; by != nil && by.Kind != model.AuthorSystem {
			p.UserID = by.ID
		}
		c.Push(rid, "chat_deactivated", p)
	}
	return nil
}

func closes(evs []model.Event) bool {
	for i := range evs {
		if evs[i].Kind == model.KindSystem && evs[i].Subtype == model.SysClosed {
			return true
		}
	}
	return false
}
