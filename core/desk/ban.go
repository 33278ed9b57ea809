package desk

import (
	"context"
	"fmt"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// MaxBanDays bounds a ban's length.
const MaxBanDays = 36500

// Ban bars a visitor from logging in, starting conversations and posting
// for days days from now (a new ban replaces the previous one), and
// publishes the change (hub.Notice.Ban, Conv carrying only the visitor).
// Only agents and the system may ban.
func (d *Desk) Ban(ctx context.Context, id model.VisitorID, days int, by model.Author, session string) (model.Visitor, error) {
	if days < 1 || days > MaxBanDays {
		return model.Visitor{}, fmt.Errorf("%w: ban days must be 1 to %d", ErrInvalid, MaxBanDays)
	}
	switch by.Kind {
	case model.AuthorSystem:
	case model.AuthorAgent:
		if _, ok := d.router.Agent(model.AgentID(by.ID)); !ok {
			return model.Visitor{}, ErrForbidden
		}
	default:
		return model.Visitor{}, ErrForbidden
	}
	var v model.Visitor
	err := d.onVisitor(ctx, id, func(ctx context.Context) error {
		var err error
		v, err = d.st.Visitor(ctx, id)
		if err != nil {
			return fmt.Errorf("visitor %s: %w", id, errNotFound(err))
		}
		now := d.Now()
		v.BannedUntil, v.UpdatedAt = now.Add(time.Duration(days)*24*time.Hour), now
		if err := d.st.Commit(context.WithoutCancel(ctx), &store.Batch{Visitors: []model.Visitor{v}}); err != nil {
			return err
		}
		d.bus.Publish(hub.Notice{Conv: model.Conversation{Visitor: id},
			Ban: &hub.BanChange{Visitor: id, Days: days, Until: v.BannedUntil, By: by}, Origin: session})
		return nil
	})
	return v, err
}

// VisitorBanned reports whether a visitor is banned now.
func (d *Desk) VisitorBanned(ctx context.Context, id model.VisitorID) (bool, error) {
	v, err := d.st.Visitor(ctx, id)
	if err != nil {
		return false, fmt.Errorf("visitor %s: %w", id, errNotFound(err))
	}
	return v.Banned(d.Now()), nil
}
