package webhooks

import (
	"encoding/json"
	"maps"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// Actions of changes that append no events (§3.3), delivered through
// NoticeOutbox. Their payloads are those of the agent pushes of the same
// names (§2.8).
const (
	// Property changes: {chat_id, properties} for chats, plus thread_id
	// for threads, plus event_id for events. Updates carry only the keys
	// whose value changed, deletions {ns: [names]}; either shows only the
	// properties agents may read (webhooks are the licence's, which sees
	// what agents see), and a change of nothing readable is not delivered.
	ChatPropertiesUpdated   = "chat_properties_updated"
	ChatPropertiesDeleted   = "chat_properties_deleted"
	ThreadPropertiesUpdated = "thread_properties_updated"
	ThreadPropertiesDeleted = "thread_properties_deleted"
	EventPropertiesUpdated  = "event_properties_updated"
	EventPropertiesDeleted  = "event_properties_deleted"
	// UserAddedToChat / UserRemovedFromChat: an agent added to or removed
	// from a thread besides its serving agent (add_user_to_chat);
	// {chat_id, thread_id, user | user_id, reason, requester_id?}. The
	// serving agent's own joining is the routing.assigned system message
	// of incoming_event.
	UserAddedToChat     = "user_added_to_chat"
	UserRemovedFromChat = "user_removed_from_chat"
	// ThreadTagged / ThreadUntagged: {chat_id, thread_id, tag}.
	ThreadTagged   = "thread_tagged"
	ThreadUntagged = "thread_untagged"
	// EventsMarkedAsSeen: a chat user's seen marker moved; {user_id,
	// chat_id, seen_up_to}.
	EventsMarkedAsSeen = "events_marked_as_seen"
)

type (
	userAdded struct {
		ChatID      string    `json:"chat_id"`
		ThreadID    string    `json:"thread_id"`
		User        wire.User `json:"user"`
		Reason      string    `json:"reason"`
		RequesterID string    `json:"requester_id,omitempty"`
	}
	userRemoved struct {
		ChatID      string `json:"chat_id"`
		ThreadID    string `json:"thread_id"`
		UserID      string `json:"user_id"`
		Reason      string `json:"reason"`
		RequesterID string `json:"requester_id,omitempty"`
	}
	threadTag struct {
		ChatID   string `json:"chat_id"`
		ThreadID string `json:"thread_id"`
		Tag      string `json:"tag"`
	}
	eventsSeen struct {
		UserID   string `json:"user_id"`
		ChatID   string `json:"chat_id"`
		SeenUpTo string `json:"seen_up_to"`
	}
)

// NoticeOutbox is the desk's hook for changes without events
// (desk.Options.NoticeOutbox): the rows a property, member, tag or seen
// change owes to the registered webhooks. Like Outbox it runs inside the
// desk's commit, so the rows exist exactly when the change does.
func (s *Service) NoticeOutbox(n hub.Notice) []store.OutboxRow {
	reg := s.reg.Load()
	if len(reg.list) == 0 {
		return nil
	}
	c := n.Conv
	chatID, threadID := string(c.Visitor), string(c.ID)
	var (
		action    string
		payload   any
		chatProps func() map[string]map[string]json.RawMessage
	)
	requester := func(by model.Author) string {
		if by.Kind == model.AuthorAgent {
			return by.ID
		}
		return ""
	}
	switch {
	case n.Props != nil:
		name, p, ok := wire.RenderPropsPush(n.Props, wire.ForAgent, s.cfg.Properties)
		if !ok {
			return nil
		}
		action, payload = name, p
		if desk.PropLocation(n.Props.Location) == desk.LocChat {
			// The store still holds the chat's properties before this
			// change: additional_data shows them after it.
			ch := n.Props
			chatProps = func() map[string]map[string]json.RawMessage {
				return applyProps(s.storedChatProps(c.Visitor), ch)
			}
		}
	case n.Member != nil:
		m := n.Member
		if m.Added {
			a := model.Agent{ID: m.Agent, Name: string(m.Agent)}
			if s.cfg.Agent != nil {
				if got, ok := s.cfg.Agent(m.Agent); ok {
					a = got
				}
			}
			action, payload = UserAddedToChat, userAdded{ChatID: chatID, ThreadID: threadID,
				User: wire.AgentUser(&a, c.Active(), wire.ForAgent), Reason: "manual", RequesterID: requester(m.By)}
		} else {
			action, payload = UserRemovedFromChat, userRemoved{ChatID: chatID, ThreadID: threadID,
				UserID: string(m.Agent), Reason: "manual", RequesterID: requester(m.By)}
		}
	case n.Tag != nil:
		action = ThreadTagged
		if !n.Tag.Added {
			action = ThreadUntagged
		}
		payload = threadTag{ChatID: chatID, ThreadID: threadID, Tag: n.Tag.Tag}
	case n.Seen != nil:
		action, payload = EventsMarkedAsSeen, eventsSeen{UserID: n.Seen.User, ChatID: chatID, SeenUpTo: wire.Time(n.Seen.UpTo)}
	default:
		return nil
	}
	if len(reg.byAction[action]) == 0 {
		return nil
	}
	b, err := json.Marshal(payload)
	if err != nil {
		s.log.Error().Err(err).Str("action", action).Msg("webhook payload")
		return nil
	}
	return s.rows(reg, c, []item{{action: action, payload: b}}, chatProps)
}

// applyProps is props with a chat property change applied (a copy).
func applyProps(props map[string]map[string]json.RawMessage, ch *hub.PropsChange) map[string]map[string]json.RawMessage {
	out := make(map[string]map[string]json.RawMessage, len(props)+len(ch.Updated))
	for ns, m := range props {
		out[ns] = maps.Clone(m)
	}
	for ns, m := range ch.Updated {
		if out[ns] == nil {
			out[ns] = make(map[string]json.RawMessage, len(m))
		}
		maps.Copy(out[ns], m)
	}
	for ns, names := range ch.Deleted {
		for _, name := range names {
			delete(out[ns], name)
		}
		if len(out[ns]) == 0 {
			delete(out, ns)
		}
	}
	return out
}
