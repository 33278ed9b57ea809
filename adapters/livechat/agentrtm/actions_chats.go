package agentrtm

import (
	"context"
	"encoding/json"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

const (
	defaultListLimit = 10
	maxListLimit     = 100
)

type listChatsRequest struct {
	Limit     *int   `json:"limit"`
	SortOrder string `json:"sort_order"`
	PageID    string `json:"page_id"`
	// filters are accepted and not applied yet.
	Filters json.RawMessage `json:"filters"`
}

// ListChatsResponse is list_chats' payload.
type ListChatsResponse struct {
	ChatsSummary   []wire.ChatSummary `json:"chats_summary"`
	FoundChats     int                `json:"found_chats"`
	NextPageID     string             `json:"next_page_id,omitempty"`
	PreviousPageID string             `json:"previous_page_id,omitempty"`
}

// listChats pages through the chats the agent may see (active and
// inactive), ordered by their newest thread's creation (sort_order desc by
// default). A page_id carries its listing's sort order and limit, which
// win over the request's.
func listChats(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p listChatsRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	k := cursor{Order: orderDesc, Limit: defaultListLimit}
	switch p.SortOrder {
	case "", orderDesc:
	case orderAsc:
		k.Order = orderAsc
	default:
		return nil, wire.Errorf(wire.Validation, "sort_order must be asc or desc")
	}
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > maxListLimit {
			return nil, wire.Errorf(wire.Validation, "limit must be between 1 and %d", maxListLimit)
		}
		k.Limit = *p.Limit
	}
	var from *cursor
	if p.PageID != "" {
		pk, err := decodeCursor(p.PageID)
		if err != nil {
			return nil, err
		}
		k.Order, k.Limit, from = pk.Order, pk.Limit, &pk
	}
	convs, err := c.visibleChats(ctx, false)
	if err != nil {
		return nil, err
	}
	sortChats(convs, k.Order)
	pg, next, prev := page(convs, k, from)
	out := ListChatsResponse{ChatsSummary: make([]wire.ChatSummary, 0, len(pg)), FoundChats: len(convs),
		NextPageID: next, PreviousPageID: prev}
	for _, conv := range pg {
		s, err := c.summary(ctx, conv)
		if err != nil {
			return nil, err
		}
		out.ChatsSummary = append(out.ChatsSummary, s)
	}
	return out, nil
}

type getChatRequest struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
}

// getChat returns a chat with one thread (the newest by default) and all
// of that thread's events.
func getChat(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p getChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	var (
		conv model.Conversation
		err  error
	)
	if p.ThreadID != "" {
		conv, err = c.thread(ctx, p.ChatID, model.ConvID(p.ThreadID))
	} else {
		conv, err = c.latestThread(ctx, p.ChatID)
	}
	if err != nil {
		return nil, err
	}
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Neighbour: c.canSee})
	if err != nil {
		return nil, err
	}
	return c.chatView(&d), nil
}

type sendEventRequest struct {
	ChatID string        `json:"chat_id"`
	Event  *wire.EventIn `json:"event"`
	// AttachToLastThread adds the event to an inactive chat's last thread
	// instead of failing with chat_inactive (ignored for active chats).
	AttachToLastThread bool `json:"attach_to_last_thread"`
}

// SendEventResponse is send_event's payload.
type SendEventResponse = wire.SendEventResponse

// eventSide is the agent side of send_event: system_message and
// agents-only events allowed, file events only with upload_file URLs.
func (c *agentView) eventSide(ctx context.Context) wire.EventSide {
	return wire.EventSide{Aud: wire.ForAgent, File: func(e *wire.EventIn) (*model.File, error) { return c.fileOf(ctx, e.URL) },
		FormType: c.s.cfg.Forms.TypeOf}
}

// sendEvent posts an event to the chat's active thread (or, with
// attach_to_last_thread, to an inactive chat's last thread). The requesting
// connection gets both the response and the incoming_event push tagged
// with its request_id (§2.2); they may arrive in either order.
func sendEvent(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p sendEventRequest
	if err := wire.DecodeEventPayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	if p.Event == nil {
		return nil, wire.Errorf(wire.Validation, "event is required")
	}
	draft, err := p.Event.Draft(c.eventSide(ctx))
	if err != nil {
		return nil, err
	}
	pr := desk.PostRequest{Author: c.author(), Draft: draft, Session: c.origin}
	ev, _, err := wire.PostToChat(ctx, c, p.ChatID, p.AttachToLastThread, pr)
	if err != nil {
		return nil, err
	}
	return SendEventResponse{EventID: wire.EventID(ev.Conv, ev.Seq)}, nil
}

type typingIndicatorRequest struct {
	ChatID     string `json:"chat_id"`
	Visibility string `json:"visibility"`
	// Recipients is the seed's name for visibility (v0.5 clients send it);
	// an indicator for agents only must never reach the customer.
	Recipients string `json:"recipients"`
	IsTyping   *bool  `json:"is_typing"`
}

// sendTypingIndicator tells the chat's customer that the agent is (or
// stopped) typing in the active thread. Nothing is stored. visibility
// "agents" (an indicator for the other agents of the chat) is accepted and
// checked like "all", but not published: agents are not shown agents'
// indicators (pushTyping), and a published one would reach the customer.
func sendTypingIndicator(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	var p typingIndicatorRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	if p.IsTyping == nil {
		return nil, wire.Errorf(wire.Validation, "is_typing is required")
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
	if vis == model.VisibleAgents {
		return nil, nil
	}
	if err := c.s.d.Typing(ctx, conv.ID, c.author(), *p.IsTyping, "", c.origin); err != nil {
		return nil, err
	}
	return nil, nil
}
