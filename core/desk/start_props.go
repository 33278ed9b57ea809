package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// checkStartExtras checks a start's initial properties as property
// updates by its author (unknown, misplaced or ill-typed properties are
// ErrInvalid, properties the author may not write ErrForbidden) and its
// Members: configured agents (ErrNotFound), at most maxMembers besides
// the serving agent (ErrInvalid).
func (d *Desk) checkStartExtras(req *StartRequest) error {
	if len(req.ChatProps) > 0 {
		if err := d.props.CheckUpdate(req.Author, LocChat, req.ChatProps); err != nil {
			return err
		}
	}
	if len(req.ThreadProps) > 0 {
		if err := d.props.CheckUpdate(req.Author, LocThread, req.ThreadProps); err != nil {
			return err
		}
	}
	if len(req.Members) > 0 && req.Author.Kind == model.AuthorVisitor {
		return fmt.Errorf("%w: a visitor adds no agents", ErrForbidden)
	}
	for _, m := range req.Members {
		if _, ok := d.router.Agent(m); !ok {
			return fmt.Errorf("agent %s: %w", m, ErrNotFound)
		}
	}
	if len(startMembers(req)) > maxMembers {
		return fmt.Errorf("%w: at most %d added agents", ErrInvalid, maxMembers)
	}
	return nil
}

// startMembers are req.Members without repeats and without the serving
// agent, in order.
func startMembers(req *StartRequest) []model.AgentID {
	var out []model.AgentID
	for _, m := range req.Members {
		if m != req.Agent && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// applyStartExtras merges a start's initial properties into the visitor's
// chat and the new conversation and sets its members.
func (d *Desk) applyStartExtras(v *model.Visitor, c *model.Conversation, req *StartRequest, now time.Time) {
	c.Members = startMembers(req)
	if len(req.ThreadProps) > 0 {
		c.Props, _ = PropsUpdate{Set: req.ThreadProps}.apply(c.Props)
	}
	if len(req.ChatProps) == 0 {
		return
	}
	var eff PropsUpdate
	v.Props, eff = PropsUpdate{Set: req.ChatProps}.apply(v.Props)
	if eff.Set != nil {
		v.UpdatedAt = now
	}
}

// StartInactive opens a conversation that is closed from the start: it
// holds req.Events (and the initial properties) but is never routed,
// queued or assigned, and no "closed" system message is written. It is
// LiveChat's start_chat / resume_chat with active:false (a chat, or a
// new thread of it, that exists without being active). A visitor with an
// open conversation gets ErrVisitorBusy (with it), a banned visitor
// starting its own ErrBanned. req.Agent, if set, is recorded as the
// conversation's agent (an agent starting an inactive chat is its user)
// without joining event or routing slot.
func (d *Desk) StartInactive(ctx context.Context, req StartRequest) (model.Conversation, []model.Event, error) {
	if err := d.checkStart(&req); err != nil {
		return model.Conversation{}, nil, err
	}
	var (
		conv model.Conversation
		evs  []model.Event
	)
	err := d.onVisitor(ctx, req.Visitor, func(ctx context.Context) error {
		v, open, err := d.startingVisitor(ctx, &req)
		if errors.Is(err, ErrVisitorBusy) {
			conv = open
		}
		if err != nil {
			return err
		}
		now := d.Now()
		by := req.Author
		conv = model.Conversation{ID: model.ConvID(model.NewID()), Visitor: req.Visitor, Department: req.Department,
			State: model.StateClosed, Origin: req.Origin, CreatedAt: now, ClosedAt: now, ClosedBy: &by}
		if req.Agent != "" {
			conv.Agent, conv.AssignedAt = req.Agent, now
		}
		d.applyStartExtras(&v, &conv, &req, now)
		for _, dr := range req.Events {
			author := req.Author
			if dr.Kind == model.KindSystem {
				author = model.System
			}
			evs = append(evs, d.event(&conv, author, dr, now))
		}
		b := &store.Batch{Convs: []model.Conversation{conv}, Events: evs}
		// The visitor is written with every start, under its revision
		// check, even when unchanged: so the start and the expiry of an
		// idle anonymous visitor (store.Store.ForgetIdleVisitors) exclude
		// one another, whichever commits first.
		b.Visitors = append(b.Visitors, v)
		for _, m := range req.Maps {
			if m.Core == "" {
				m.Core = string(conv.ID)
			}
			b.Maps = append(b.Maps, m)
		}
		return d.commitCreated(ctx, b, conv, true, false, evs, req.Session)
	})
	return conv, evs, err
}
