package desk

import (
	"context"
	"errors"
	"fmt"

	"chatgate/core/model"
	"chatgate/store"
)

// Attach appends an event to a conversation even when that conversation
// is closed, without reopening or routing it: LiveChat's send_event with
// attach_to_last_thread on an inactive chat (§2.5; the Agent Chat API has
// the same flag, lc-sdk-js agent sendEvent: "adds event to last inactive
// thread"), which adds the event to the last thread. A visitor may attach
// only to its own conversations (ErrForbidden otherwise), not while banned
// (ErrBanned); an agent's access is its surface's to check first (as for
// Post). IdemSystem and IdemKey make it idempotent as in Post. An active
// conversation is simply posted to (Post).
func (d *Desk) Attach(ctx context.Context, req PostRequest) (model.Event, bool, error) {
	if req.Author.Kind != model.AuthorVisitor && req.Author.Kind != model.AuthorAgent {
		return model.Event{}, false, ErrForbidden
	}
	if err := d.validate(&req.Draft); err != nil {
		return model.Event{}, false, err
	}
	if err := d.checkDraftProps(req.Author, req.Draft); err != nil {
		return model.Event{}, false, err
	}
	if req.IdemKey != "" {
		if e, ok, err := d.replay(ctx, req.IdemSystem, req.IdemKey, req.Conv, req.Author); ok || err != nil {
			return e, ok, err
		}
	}
	var (
		ev     model.Event
		active bool
	)
	err := d.onConv(ctx, req.Conv, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, req.Conv)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", req.Conv, errNotFound(err))
		}
		if req.Author.Kind == model.AuthorVisitor && req.Author.ID != string(c.Visitor) {
			return ErrForbidden
		}
		if c.Active() {
			active = true
			return nil
		}
		now := d.Now()
		if v, err := d.st.Visitor(ctx, c.Visitor); err != nil {
			return fmt.Errorf("visitor %s: %w", c.Visitor, err)
		} else if req.Author.Kind == model.AuthorVisitor && v.Banned(now) {
			return ErrBanned
		}
		ev = d.event(&c, req.Author, req.Draft, now)
		evs := []model.Event{ev}
		b := &store.Batch{Convs: []model.Conversation{c}, Events: evs}
		if req.IdemKey != "" {
			b.Idems = []store.Idem{{System: req.IdemSystem, Key: req.IdemKey, Conv: c.ID, Seq: ev.Seq}}
		}
		return d.commit(ctx, b, c, evs, req.Session)
	})
	if err == nil && active {
		return d.Post(ctx, req)
	}
	if errors.Is(err, store.ErrConflict) && req.IdemKey != "" {
		if e, ok, rerr := d.replay(ctx, req.IdemSystem, req.IdemKey, req.Conv, req.Author); ok || rerr != nil {
			return e, ok, rerr
		}
	}
	return ev, false, err
}
