package wire

import (
	"chatgate/core/desk"
	"chatgate/core/model"
)

// Pushes both APIs send alike (§2.6, §2.8). Building them here keeps the
// agent and customer surfaces (and webhooks) from drifting apart.

// IncomingChat is the incoming_chat push: a new thread as its receiver
// sees it, with the requester that caused it when there is one.
type IncomingChat struct {
	RequesterID string `json:"requester_id,omitempty"`
	Chat        Chat   `json:"chat"`
}

// ChatDeactivated is the chat_deactivated push; UserID names who closed
// the thread when it was a user.
type ChatDeactivated struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	UserID   string `json:"user_id,omitempty"`
}

// IncomingEvent is the incoming_event and event_updated push.
type IncomingEvent struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	Event    Event  `json:"event"`
}

// UpdatedEvents renders the event_updated pushes of a change's updated
// events (edits and deletions, in order) that aud may see: an agents-only
// event is never shown to a customer, edited or not. A deleted event is
// shown with its content removed, as it is stored.
func UpdatedEvents(conv model.Conversation, updated []model.Event, aud Audience, reg *desk.Properties) []IncomingEvent {
	var out []IncomingEvent
	for i := range updated {
		e := &updated[i]
		if !Visible(e, aud) {
			continue
		}
		out = append(out, IncomingEvent{ChatID: string(conv.Visitor), ThreadID: string(conv.ID), Event: RenderEventFor(e, aud, reg)})
	}
	return out
}

// ChatTransferred is the chat_transferred push (both APIs): where the
// thread went, who moved it and, when it waits in the queue, its place.
// customer-sdk 4.0.2 reads chat_id, thread_id, transferred_to.{agent_ids,
// group_ids} (both must be there), reason, requester_id (for "manual") and
// queue.{position, wait_time, queued_at}.
type ChatTransferred struct {
	ChatID        string        `json:"chat_id"`
	ThreadID      string        `json:"thread_id"`
	RequesterID   string        `json:"requester_id,omitempty"`
	Reason        string        `json:"reason"`
	TransferredTo TransferredTo `json:"transferred_to"`
	Queue         *Queue        `json:"queue,omitempty"`
}

// TransferredTo says where a chat went.
type TransferredTo struct {
	GroupIDs []int    `json:"group_ids"`
	AgentIDs []string `json:"agent_ids"`
}

// TransferIn returns a change's chat_transferred system event, if any.
func TransferIn(evs []model.Event) *model.Event {
	for i := range evs {
		if evs[i].Kind == model.KindSystem && evs[i].Subtype == model.SysTransferred {
			return &evs[i]
		}
	}
	return nil
}

// NewChatTransferred builds the push for transfer event tr of conv (the
// conversation after the change). pos is its queue position (0 when not
// known or not queued); it has waited there since the transfer.
func NewChatTransferred(conv model.Conversation, tr *model.Event, pos int) ChatTransferred {
	p := ChatTransferred{ChatID: string(conv.Visitor), ThreadID: string(conv.ID), Reason: "manual",
		TransferredTo: TransferredTo{GroupIDs: []int{GroupID(conv.Department)}, AgentIDs: []string{}}}
	if tr.Vars["by_kind"] == string(model.AuthorAgent) {
		p.RequesterID = tr.Vars["by_id"]
	}
	if conv.Agent != "" {
		p.TransferredTo.AgentIDs = append(p.TransferredTo.AgentIDs, string(conv.Agent))
	}
	if conv.State == model.StateQueued {
		p.Queue = &Queue{Position: pos, WaitTime: 0, QueuedAt: Time(tr.At)}
	}
	return p
}
