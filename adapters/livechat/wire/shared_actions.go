package wire

import (
	"context"
	"errors"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// Actor is whom an action both APIs share runs as: an agent's request or a
// customer's. The surface keeps its own access rule behind LatestThread
// and Thread (an agent sees the chats it serves or may take; a customer
// only its own), so a shared handler can never widen what either may
// reach: it asks the actor first and acts on what the actor was given.
type Actor interface {
	// LatestThread is chatID's newest thread, or not_found when the actor
	// may not see that chat.
	LatestThread(ctx context.Context, chatID string) (model.Conversation, error)
	// Thread is thread id of chatID, or not_found when the actor may not
	// see it.
	Thread(ctx context.Context, chatID string, id model.ConvID) (model.Conversation, error)
	// Author is the actor as the author of what it writes.
	Author() model.Author
	// OriginOf tags the desk commands req causes, so that the pushes they
	// cause carry req's request_id on the connection that sent it.
	OriginOf(req *Request) string
	// Desk is the core the surface serves.
	Desk() *desk.Desk
}

// AddPropsActions registers the property actions (PropsActions) in t.
func AddPropsActions[C Actor](t Table[C]) {
	for name, a := range PropsActions {
		t[name] = Action[C]{Handle: func(ctx context.Context, c C, req *Request) (any, error) {
			return propsAction(ctx, c, req, a)
		}}
	}
}

// propsAction changes properties of a chat, thread or event the actor may
// see (not_found otherwise), validated against the property configuration
// (validation / authorization errors). The pushes go to the chat's agent
// and customer, each seeing only what it may read.
func propsAction[C Actor](ctx context.Context, c C, req *Request, a PropsAction) (any, error) {
	pr, err := DecodePropsRequest(req, a)
	if err != nil {
		return nil, err
	}
	if a.Location == desk.LocChat {
		_, err = c.LatestThread(ctx, pr.ChatID)
	} else {
		_, err = c.Thread(ctx, pr.ChatID, pr.Target.Conv)
	}
	if err != nil {
		return nil, err
	}
	if a.Delete {
		return nil, c.Desk().DeleteProperties(ctx, pr.Target, c.Author(), pr.Delete, c.OriginOf(req))
	}
	return nil, c.Desk().UpdateProperties(ctx, pr.Target, c.Author(), pr.Set, c.OriginOf(req))
}

// PostToChat is the part of send_event both APIs share: it posts pr to
// chatID's active thread (pr.Conv is set here), or, with attach
// (attach_to_last_thread, ignored for an active chat), adds it to an
// inactive chat's last thread, which stays inactive (desk.Attach); an
// inactive chat without attach answers chat_inactive. It reports whether
// the desk replayed an earlier post of pr's idempotency key.
//
// The thread may come from this node's cache (store.MayBeStale): the
// desk's post checks the author and the thread again when it commits, on
// the copy read here (desk.PostRead: the commit holds it to this
// revision) rather than reading it again; a refusal, or attaching to an
// inactive thread, is only decided on a fresh read. A post refused
// because the cached thread list lacked a newer thread started through
// another node, or still named a thread moved to another customer, is
// tried once more on the fresh newest thread.
func PostToChat[C Actor](ctx context.Context, c C, chatID string, attach bool, pr desk.PostRequest) (model.Event, bool, error) {
	conv, err := c.LatestThread(store.MayBeStale(ctx), chatID)
	if err != nil || !conv.Active() {
		conv, err = c.LatestThread(ctx, chatID)
	}
	if err != nil {
		return model.Event{}, false, err
	}
	d := c.Desk()
	post := func(ctx context.Context, pr desk.PostRequest) (model.Event, bool, error) {
		return d.PostRead(ctx, pr, &conv)
	}
	if !conv.Active() {
		if !attach {
			return model.Event{}, false, NewError(ChatInactive)
		}
		post = d.Attach
	}
	pr.Conv = conv.ID
	ev, replayed, err := post(ctx, pr)
	if errors.Is(err, desk.ErrInactive) || errors.Is(err, desk.ErrForbidden) {
		if fresh, ferr := c.LatestThread(ctx, chatID); ferr == nil && fresh.ID != conv.ID && fresh.Active() {
			pr.Conv = fresh.ID
			ev, replayed, err = d.Post(ctx, pr)
		}
	}
	return ev, replayed, err
}

type deactivateChatRequest struct {
	ID string `json:"id"`
	// ignore_requester_presence (agents) is accepted and ignored.
}

// DeactivateChat is deactivate_chat: it closes the chat's active thread
// with the actor as author (chat_inactive when none is active).
func DeactivateChat[C Actor](ctx context.Context, c C, req *Request) (any, error) {
	var p deactivateChatRequest
	if err := DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, Errorf(Validation, "id is required")
	}
	conv, err := c.LatestThread(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, NewError(ChatInactive)
	}
	if _, err := c.Desk().Close(ctx, conv.ID, c.Author(), "", c.OriginOf(req)); err != nil {
		return nil, err
	}
	return nil, nil
}

type markSeenRequest struct {
	ChatID   string `json:"chat_id"`
	SeenUpTo string `json:"seen_up_to"`
}

// EventsMarkedAsSeen is the events_marked_as_seen push.
type EventsMarkedAsSeen struct {
	UserID   string `json:"user_id"`
	ChatID   string `json:"chat_id"`
	SeenUpTo string `json:"seen_up_to"`
}

// MarkEventsAsSeen is mark_events_as_seen: it stores the actor's "seen up
// to" marker on a chat it may see; events_marked_as_seen follows as a
// push to everyone in the chat.
func MarkEventsAsSeen[C Actor](ctx context.Context, c C, req *Request) (any, error) {
	var p markSeenRequest
	if err := DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" || p.SeenUpTo == "" {
		return nil, Errorf(Validation, "chat_id and seen_up_to are required")
	}
	t, err := time.Parse(time.RFC3339Nano, p.SeenUpTo)
	if err != nil {
		return nil, Errorf(Validation, "seen_up_to must be an RFC 3339 date")
	}
	conv, err := c.LatestThread(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	_, err = c.Desk().MarkSeen(ctx, conv.Visitor, c.Author(), t, c.OriginOf(req))
	return nil, err
}
