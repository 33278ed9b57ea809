package desk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// MarkSeen records that by (the chat's visitor or an agent) has seen the
// events of visitor's chat up to upTo, durably on the visitor
// (model.Visitor.SeenUpTo), and publishes hub.Notice.Seen on the chat's
// newest conversation. Markers only move forward: an earlier upTo keeps
// the stored one, which is what is published and returned. A visitor may
// mark only its own chat (ErrForbidden); whether an agent may see the chat
// is the surface's check. A chat without conversations is ErrNotFound.
func (d *Desk) MarkSeen(ctx context.Context, visitor model.VisitorID, by model.Author, upTo time.Time, session string) (time.Time, error) {
	switch by.Kind {
	case model.AuthorVisitor:
		if by.ID != string(visitor) {
			return time.Time{}, ErrForbidden
		}
	case model.AuthorAgent:
		if by.ID == "" {
			return time.Time{}, fmt.Errorf("%w: agent without id", ErrInvalid)
		}
	default:
		return time.Time{}, ErrForbidden
	}
	if upTo.IsZero() {
		return time.Time{}, fmt.Errorf("%w: seen_up_to is required", ErrInvalid)
	}
	upTo = upTo.UTC().Truncate(time.Microsecond)
	var stored time.Time
	err := d.onVisitor(ctx, visitor, func(ctx context.Context) error {
		v, err := d.st.Visitor(ctx, visitor)
		if err != nil {
			return fmt.Errorf("visitor %s: %w", visitor, errNotFound(err))
		}
		ids, err := d.st.VisitorConversations(ctx, visitor)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("chat %s: %w", visitor, ErrNotFound)
		}
		c, err := d.st.Conversation(ctx, ids[len(ids)-1])
		if err != nil {
			return fmt.Errorf("conversation: %w", errNotFound(err))
		}
		stored = v.SeenUpTo[by.ID]
		n := hub.Notice{Conv: c, Seen: &hub.SeenChange{User: by.ID, Kind: by.Kind}, Origin: session}
		if !upTo.After(stored) {
			// Nothing to store; the marker is still told, as asked.
			n.Seen.UpTo = stored
			d.bus.Publish(n)
			return nil
		}
		stored = upTo
		n.Seen.UpTo = upTo
		seen := make(map[string]time.Time, len(v.SeenUpTo)+1)
		maps.Copy(seen, v.SeenUpTo)
		seen[by.ID] = upTo
		v.SeenUpTo = seen
		return d.commitNotice(ctx, &store.Batch{Visitors: []model.Visitor{v}}, n)
	})
	return stored, err
}
