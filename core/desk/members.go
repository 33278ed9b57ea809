package desk

import (
	"context"
	"fmt"
	"slices"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// maxMembers bounds the agents added to a conversation (LiveChat allows
// four besides the serving one).
const maxMembers = 4

// SetMember adds (add) an agent to an active conversation besides its
// serving agent, or removes one it added, and publishes the change
// (hub.Notice.Member). Only an agent who may act on the conversation (or
// the system) may do so. Adding the serving agent or a member, or removing
// an agent that is not a member, changes and publishes nothing; the
// serving agent cannot be removed (ErrInvalid; close or transfer instead).
// It returns whether the members changed.
func (d *Desk) SetMember(ctx context.Context, id model.ConvID, agent model.AgentID, add bool, vis model.Visibility,
	by model.Author, session string) (bool, error) {
	switch vis {
	case "":
		vis = model.VisibleAll
	case model.VisibleAll, model.VisibleAgents:
	default:
		return false, fmt.Errorf("%w: unknown visibility %q", ErrInvalid, vis)
	}
	if by.Kind == model.AuthorVisitor {
		return false, ErrForbidden
	}
	if _, ok := d.router.Agent(agent); !ok {
		return false, fmt.Errorf("agent %s: %w", agent, ErrNotFound)
	}
	changed := false
	err := d.onConv(ctx, id, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		if !c.Active() {
			return ErrInactive
		}
		if err := d.mayAct(c, by); err != nil {
			return err
		}
		has := c.HasMember(agent)
		switch {
		case add && (has || c.Agent == agent), !add && !has && c.Agent != agent:
			return nil
		case !add && c.Agent == agent:
			return fmt.Errorf("%w: the serving agent cannot be removed", ErrInvalid)
		case add:
			if len(c.Members) >= maxMembers {
				return fmt.Errorf("%w: at most %d added agents", ErrInvalid, maxMembers)
			}
			c.Members = append(slices.Clone(c.Members), agent)
			if vis == model.VisibleAgents {
				c.HiddenMembers = append(slices.Clone(c.HiddenMembers), agent)
			}
		default:
			// The visitor is told of a removal only if it was shown the
			// member, whatever the request's visibility says.
			vis = model.VisibleAll
			if c.MemberHidden(agent) {
				vis = model.VisibleAgents
			}
			drop := func(x model.AgentID) bool { return x == agent }
			c.Members = slices.DeleteFunc(slices.Clone(c.Members), drop)
			if len(c.Members) == 0 {
				c.Members = nil
			}
			c.HiddenMembers = slices.DeleteFunc(slices.Clone(c.HiddenMembers), drop)
			if len(c.HiddenMembers) == 0 {
				c.HiddenMembers = nil
			}
		}
		n := hub.Notice{Conv: c, Member: &hub.MemberChange{Agent: agent, Added: add, Visibility: vis, By: by}, Origin: session}
		if err := d.commitNotice(ctx, &store.Batch{Convs: []model.Conversation{c}}, n); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}
