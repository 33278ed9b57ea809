package agentrtm

import (
	"context"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// ThreadTagged is the thread_tagged / thread_untagged push.
type ThreadTagged struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	Tag      string `json:"tag"`
}

type tagRequest struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
	Tag      string `json:"tag"`
}

// tagThread and untagThread add or remove a (case-sensitive) tag of a
// thread the agent may see (not_found otherwise); inactive threads may be
// tagged too, as archives are. thread_tagged / thread_untagged go, through
// the pump, to every agent who may see the chat; adding a tag the thread
// has (or removing one it lacks) succeeds and pushes nothing.
func tagThread(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	return tagAction(ctx, c, req, true)
}

func untagThread(ctx context.Context, c *caller, req *wire.Request) (any, error) {
	return tagAction(ctx, c, req, false)
}

func tagAction(ctx context.Context, c *caller, req *wire.Request, add bool) (any, error) {
	var p tagRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	switch {
	case p.ChatID == "":
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	case p.ThreadID == "":
		return nil, wire.Errorf(wire.Validation, "thread_id is required")
	case p.Tag == "":
		return nil, wire.Errorf(wire.Validation, "tag is required")
	}
	conv, err := c.thread(ctx, p.ChatID, model.ConvID(p.ThreadID))
	if err != nil {
		return nil, err
	}
	_, err = c.s.d.TagThread(ctx, conv.ID, c.author(), p.Tag, add, c.origin)
	return nil, err
}

// tagPush is the push a tag notice means to an agent.
func tagPush(conv model.Conversation, t *hub.TagChange) (string, ThreadTagged) {
	name := "thread_untagged"
	if t.Added {
		name = "thread_tagged"
	}
	return name, ThreadTagged{ChatID: string(conv.Visitor), ThreadID: string(conv.ID), Tag: t.Tag}
}
