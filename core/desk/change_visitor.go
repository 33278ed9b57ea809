package desk

import (
	"context"
	"errors"
	"fmt"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// ErrWrongVisitor: a command named the conversation's visitor and the
// conversation belongs to another one (it changed, or the caller erred).
var ErrWrongVisitor = errors.New("the conversation belongs to another visitor")

// ChangeVisitor gives conversation id to visitor to, taking it from
// visitor from (Rocket.Chat's livechat/room.visitor). Afterwards every
// surface shows to as the conversation's visitor, to's credentials open
// it and from's no longer do: all of them read Conversation.Visitor, and
// the store moves the conversation from from's VisitorConversations to
// to's in the same commit. The change is published as a notice without
// events whose Conv carries the new visitor and PrevVisitor the old one.
//
// by must be the system, the serving agent, a member, or an agent of the
// conversation's department (who may read it, as Rocket.Chat's
// canAccessRoom). ErrWrongVisitor when the conversation's visitor is not
// from; ErrNotFound for an unknown conversation or visitor. Changing to
// the same visitor changes nothing.
//
// chatgate keeps at most one open conversation per visitor, and finds it
// as the visitor's newest: so an open conversation is refused
// (ErrVisitorBusy) when to has an open one, and (ErrInvalid) when to has a
// conversation newer than it, which would hide it; a closed one is
// refused (ErrVisitorBusy) when it would become newer than to's open one.
// Rocket.Chat lets a visitor hold several open rooms and refuses none of
// these.
func (d *Desk) ChangeVisitor(ctx context.Context, id model.ConvID, from, to model.VisitorID, by model.Author) (model.Conversation, error) {
	var conv model.Conversation
	// The new visitor's actor and the deployment's routing lock, as
	// Start's: no start for to runs between the check of its
	// conversations and the commit, on this node or another.
	err := d.onVisitor(ctx, to, d.routed(func(ctx context.Context) error {
		if _, err := d.st.Visitor(ctx, to); err != nil {
			return fmt.Errorf("visitor %s: %w", to, errNotFound(err))
		}
		return d.onConv(ctx, id, func(ctx context.Context) error {
			c, err := d.st.Conversation(ctx, id)
			if err != nil {
				return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
			}
			conv = c
			if c.Visitor != from {
				return ErrWrongVisitor
			}
			if err := d.mayChangeVisitor(c, by); err != nil {
				return err
			}
			if from == to {
				return nil
			}
			if err := d.mayReceive(ctx, c, to); err != nil {
				return err
			}
			// Read here, so that a retry after a stale write reads it
			// again.
			tv, err := d.st.Visitor(ctx, to)
			if err != nil {
				return fmt.Errorf("visitor %s: %w", to, errNotFound(err))
			}
			c.Visitor = to
			// to is written too, unchanged, under its revision check, as
			// Start does: the change and the expiry of an idle anonymous
			// visitor (store.Store.ForgetIdleVisitors) exclude one another.
			b := &store.Batch{Convs: []model.Conversation{c}, Visitors: []model.Visitor{tv}}
			if d.outbox != nil {
				b.Outbox = append(b.Outbox, d.outbox(c, false, nil, nil, nil)...)
			}
			if err := d.st.Commit(context.WithoutCancel(ctx), b); err != nil {
				return err
			}
			conv = b.Convs[0]
			d.log.Info().Str("conv", string(c.ID)).Str("from", string(from)).Str("to", string(to)).
				Str("by", by.ID).Msg("chat visitor changed")
			d.bus.Publish(hub.Notice{Conv: conv, PrevVisitor: from})
			return nil
		})
	}))
	return conv, err
}

// mayChangeVisitor: the system, or an agent who may read c (serving it,
// a member, or of its department).
func (d *Desk) mayChangeVisitor(c model.Conversation, by model.Author) error {
	switch by.Kind {
	case model.AuthorSystem:
		return nil
	case model.AuthorAgent:
		a, ok := d.router.Agent(model.AgentID(by.ID))
		if ok && (c.Agent == a.ID || c.HasMember(a.ID) || a.Serves(c.Department)) {
			return nil
		}
	}
	return ErrForbidden
}

// mayReceive checks that visitor to can take c and keep the rule that
// only its newest conversation may be open (see ChangeVisitor).
func (d *Desk) mayReceive(ctx context.Context, c model.Conversation, to model.VisitorID) error {
	ids, err := d.st.VisitorConversations(ctx, to)
	if err != nil || len(ids) == 0 {
		return err
	}
	newest := ids[len(ids)-1]
	last, err := d.st.Conversation(ctx, newest)
	if err != nil {
		return fmt.Errorf("conversation %s: %w", newest, err)
	}
	switch {
	case c.Active() && last.Active():
		return ErrVisitorBusy
	case c.Active() && newest > c.ID:
		return fmt.Errorf("%w: the visitor has a conversation newer than this open one", ErrInvalid)
	case !c.Active() && last.Active() && c.ID > newest:
		return ErrVisitorBusy
	}
	return nil
}
