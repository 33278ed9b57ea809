package webhooks

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// Payloads (§3.3; the agent pushes of §2.8).
type (
	incomingChat struct {
		Chat wire.Chat `json:"chat"`
	}
	incomingEvent   = wire.IncomingEvent
	chatDeactivated struct {
		ChatID   string `json:"chat_id"`
		ThreadID string `json:"thread_id"`
		UserID   string `json:"user_id,omitempty"`
	}
)

// rowBody is an outbox row's payload: everything of the envelope but the
// webhook's own fields (id, secret, organisation), which are added at
// delivery, so that secrets are not copied into every row.
type rowBody struct {
	WebhookID      string          `json:"webhook_id"`
	Action         string          `json:"action"`
	ChatID         string          `json:"chat_id"`
	Payload        json.RawMessage `json:"payload"`
	AdditionalData json.RawMessage `json:"additional_data"`
}

// item is one action a change fires, before it is fanned out to webhooks.
type item struct {
	action  string
	payload json.RawMessage
	author  *model.Author // of the event, for filters.author_type
}

// Outbox is the desk's outbox hook: the rows a committed change owes to
// the registered webhooks, in delivery order. c is the conversation after
// the change, events the events it appends, updated those it changes.
//
//   - A change that starts a thread (its first event has seq 1, or it has
//     no event yet) fires incoming_chat, whose thread carries the change's
//     events; those events fire no incoming_event of their own.
//   - Otherwise each appended event fires incoming_event, in order.
//   - Each updated event (edited or deleted) fires event_updated.
//   - A change that closes the thread fires chat_deactivated, after the
//     incoming_event of its closing system message.
func (s *Service) Outbox(c model.Conversation, pending []model.Visitor, events []model.Event, updated []model.Event) []store.OutboxRow {
	reg := s.reg.Load()
	if len(reg.list) == 0 {
		return nil
	}
	chatID, threadID := string(c.Visitor), string(c.ID)
	var items []item
	add := func(action string, payload any, author *model.Author) {
		if len(reg.byAction[action]) == 0 {
			return
		}
		b, err := json.Marshal(payload)
		if err != nil {
			s.log.Error().Err(err).Str("action", action).Msg("webhook payload")
			return
		}
		items = append(items, item{action: action, payload: b, author: author})
	}
	started := (len(events) == 0 && c.LastSeq == 0) || (len(events) > 0 && events[0].Seq == 1)
	if started {
		if len(reg.byAction[IncomingChat]) > 0 {
			add(IncomingChat, incomingChat{Chat: wire.RenderChat(s.chatData(c, pending, events), wire.ForAgent)}, nil)
		}
	} else {
		for i := range events {
			e := &events[i]
			add(IncomingEvent, incomingEvent{ChatID: chatID, ThreadID: threadID, Event: wire.RenderEventFor(e, wire.ForAgent, s.cfg.Properties)}, &e.Author)
		}
	}
	// The same event_updated as the agent and customer APIs (one rule for
	// all three, wire.UpdatedEvents): every edit and deletion, a deleted
	// event without its content. Agents see every event, so the list
	// matches updated one to one (the author is the filter's).
	for i, u := range wire.UpdatedEvents(c, updated, wire.ForAgent, s.cfg.Properties) {
		add(EventUpdated, u, &updated[i].Author)
	}
	if c.State == model.StateClosed && closes(events) {
		p := chatDeactivated{ChatID: chatID, ThreadID: threadID}
		if by := c.ClosedBy; by != nil && by.Kind != model.AuthorSystem {
			p.UserID = by.ID
		}
		add(ChatDeactivated, p, nil)
	}
	return s.rows(reg, c, items, func() map[string]map[string]json.RawMessage { return s.chatProps(c.Visitor, pending) })
}

// rows fans items out to the webhooks registered for their actions and
// whose filters match, as outbox rows in order. chatProps, if set, gives
// the chat's properties after the change (for additional_data); nil reads
// them from the store.
func (s *Service) rows(reg *registry, c model.Conversation, items []item, chatProps func() map[string]map[string]json.RawMessage) []store.OutboxRow {
	if len(items) == 0 {
		return nil
	}
	if chatProps == nil {
		chatProps = func() map[string]map[string]json.RawMessage { return s.storedChatProps(c.Visitor) }
	}
	// Read at most once per change, and only if a filter or an
	// additional_data asks for it.
	read, props := false, map[string]map[string]json.RawMessage(nil)
	load := chatProps
	chatProps = func() map[string]map[string]json.RawMessage {
		if !read {
			read, props = true, load()
		}
		return props
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	users := chatUsers(c)
	var rows []store.OutboxRow
	extras := map[string]json.RawMessage{}
	for _, it := range items {
		for _, w := range reg.byAction[it.action] {
			if !w.matches(c, users, it.author, chatProps) {
				continue
			}
			body, err := json.Marshal(rowBody{WebhookID: w.ID, Action: it.action, ChatID: string(c.Visitor), Payload: it.payload,
				AdditionalData: s.extra(extras, w.AdditionalData, users, chatProps)})
			if err != nil {
				s.log.Error().Err(err).Str("action", it.action).Msg("webhook row")
				continue
			}
			rows = append(rows, store.OutboxRow{ID: model.NewID(), Target: w.dest(), Conv: c.ID, Payload: body,
				CreatedAt: now, NextAt: now})
		}
	}
	return rows
}

// storedChatProps reads a chat's (visitor's) properties. It runs inside
// the desk's commit, so it sees the state before the change.
func (s *Service) storedChatProps(id model.VisitorID) map[string]map[string]json.RawMessage {
	return s.chatProps(id, nil)
}

// chatProps is a chat's properties as the change being committed leaves
// them: from the batch's own visitor record when it writes one (a start
// with chat properties), else from the store.
func (s *Service) chatProps(id model.VisitorID, pending []model.Visitor) map[string]map[string]json.RawMessage {
	v, err := s.visitor(id, pending)
	if err != nil {
		s.log.Warn().Err(err).Str("visitor", string(id)).Msg("webhook additional_data: visitor not readable")
		return nil
	}
	return v.Props
}

// visitor is the visitor as the change being committed leaves it.
func (s *Service) visitor(id model.VisitorID, pending []model.Visitor) (model.Visitor, error) {
	for i := len(pending) - 1; i >= 0; i-- {
		if pending[i].ID == id {
			return pending[i], nil
		}
	}
	return s.st.Visitor(context.Background(), id)
}

func closes(evs []model.Event) bool {
	for i := range evs {
		if evs[i].Kind == model.KindSystem && evs[i].Subtype == model.SysClosed {
			return true
		}
	}
	return false
}

// chatData is what rendering a starting thread needs. It runs inside the
// desk's commit: the visitor is the batch's record when it writes one,
// else the stored one.
func (s *Service) chatData(c model.Conversation, pending []model.Visitor, events []model.Event) *wire.ChatData {
	d := &wire.ChatData{Conv: c, Events: events, Now: s.cfg.Now(), Props: s.cfg.Properties}
	v, err := s.visitor(c.Visitor, pending)
	if err != nil {
		s.log.Warn().Err(err).Str("visitor", string(c.Visitor)).Msg("webhook incoming_chat: visitor not readable")
		v = model.Visitor{ID: c.Visitor}
	}
	d.Visitor = v
	if c.Agent != "" {
		a := model.Agent{ID: c.Agent, Name: string(c.Agent)}
		if s.cfg.Agent != nil {
			if got, ok := s.cfg.Agent(c.Agent); ok {
				a = got
			}
		}
		d.Agent = &a
	}
	d.Members = wire.MembersOf(&c, s.cfg.Agent)
	if c.State == model.StateQueued && s.cfg.QueuePosition != nil {
		d.QueuePos = s.cfg.QueuePosition(c.ID)
	}
	return d
}

// chatUsers are the ids of a chat's users: its customer, its agent, then
// the agents added to it (webhooks see what agents see).
func chatUsers(c model.Conversation) []string {
	users := []string{string(c.Visitor)}
	if c.Agent != "" {
		users = append(users, string(c.Agent))
	}
	for _, m := range c.Members {
		if m != c.Agent {
			users = append(users, string(m))
		}
	}
	return users
}

// extra renders the additional_data a webhook asked for, sharing the
// encoding between webhooks that asked for the same. chat_properties are
// the chat's (not the thread's) properties that agents may read: webhooks
// see what agents see.
func (s *Service) extra(cache map[string]json.RawMessage, want []string, users []string, chatProps func() map[string]map[string]json.RawMessage) json.RawMessage {
	key := ""
	for _, w := range want {
		key += w + ","
	}
	if b, ok := cache[key]; ok {
		return b
	}
	d := make(map[string]any, len(want))
	for _, w := range want {
		switch w {
		case DataChatProperties:
			props := wire.Properties(wire.ReadableProps(s.cfg.Properties, wire.ForAgent, desk.LocChat, chatProps()))
			if props == nil {
				props = wire.Properties{}
			}
			d[DataChatProperties] = props
		case DataChatPresenceUserIDs:
			d[DataChatPresenceUserIDs] = users
		}
	}
	b, _ := json.Marshal(d)
	cache[key] = b
	return b
}

// matches applies the webhook's filters to a change of c; author is the
// event's author for event actions, nil otherwise.
func (w *Webhook) matches(c model.Conversation, users []string, author *model.Author, chatProps func() map[string]map[string]json.RawMessage) bool {
	f := w.Filters
	if f == nil {
		return true
	}
	if f.AuthorType != "" && author != nil {
		switch {
		case f.AuthorType == "customer" && author.Kind == model.AuthorVisitor:
		case f.AuthorType == "agent" && author.Kind == model.AuthorAgent:
		default:
			return false
		}
	}
	if f.OnlyMyChats {
		// source.client_id is a chat property in LiveChat (§3.3: "only
		// chats whose property source.client_id = my client id"); the
		// thread's own is accepted too, for chats started before chat
		// properties were kept on the chat.
		mine := func(props map[string]map[string]json.RawMessage) bool {
			var id string
			raw, ok := props["source"]["client_id"]
			return ok && json.Unmarshal(raw, &id) == nil && id == w.OwnerClientID
		}
		if !mine(chatProps()) && !mine(c.Props) {
			return false
		}
	}
	if p := f.ChatPresence; p != nil && p.UserIDs != nil {
		in := func(list []string) bool {
			for _, u := range users {
				if slices.Contains(list, u) {
					return true
				}
			}
			return false
		}
		if len(p.UserIDs.Values) > 0 && !in(p.UserIDs.Values) {
			return false
		}
		if len(p.UserIDs.ExcludeValues) > 0 && in(p.UserIDs.ExcludeValues) {
			return false
		}
	}
	return true
}
