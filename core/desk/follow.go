package desk

import (
	"context"
	"fmt"
	"slices"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// maxFollowers bounds a conversation's followers.
const maxFollowers = 100

// Follow makes agent follow (follow) or stop following a conversation and
// publishes the change (hub.Notice.Follow). Only a configured agent who
// serves the conversation's department may follow it, and only while it is
// active; unfollowing is always allowed. Following twice, or unfollowing a
// conversation not followed, changes and publishes nothing. It returns
// whether the followers changed.
func (d *Desk) Follow(ctx context.Context, id model.ConvID, agent model.AgentID, follow bool, session string) (bool, error) {
	a, ok := d.router.Agent(agent)
	if !ok {
		return false, fmt.Errorf("agent %s: %w", agent, ErrForbidden)
	}
	changed := false
	err := d.onConv(ctx, id, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		has := c.FollowedBy(agent)
		switch {
		case follow && has, !follow && !has:
			return nil
		case follow:
			if !c.Active() {
				return ErrInactive
			}
			if c.Agent != agent && !a.Serves(c.Department) {
				return ErrForbidden
			}
			if len(c.Followers) >= maxFollowers {
				return fmt.Errorf("%w: more than %d followers", ErrInvalid, maxFollowers)
			}
			c.Followers = append(slices.Clone(c.Followers), agent)
		default:
			c.Followers = slices.DeleteFunc(slices.Clone(c.Followers), func(x model.AgentID) bool { return x == agent })
			if len(c.Followers) == 0 {
				c.Followers = nil
			}
		}
		if err := d.st.Commit(context.WithoutCancel(ctx), &store.Batch{Convs: []model.Conversation{c}}); err != nil {
			return err
		}
		changed = true
		d.bus.Publish(hub.Notice{Conv: c, Follow: &hub.FollowChange{Agent: agent, Followed: follow}, Origin: session})
		return nil
	})
	return changed, err
}
