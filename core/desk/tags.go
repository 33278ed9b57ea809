package desk

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// Limits on thread tags.
const (
	maxTagLen = 256
	maxTags   = 100
)

// TagThread adds (add) or removes a tag of a conversation and publishes the
// change (hub.Notice.Tag). Tags are case-sensitive. Closed conversations
// may be tagged too (tags are typically set on archived threads). Adding a
// tag the conversation has, or removing one it lacks, changes nothing and
// publishes nothing. It returns whether the tags changed.
func (d *Desk) TagThread(ctx context.Context, id model.ConvID, by model.Author, tag string, add bool, session string) (bool, error) {
	if tag == "" || len(tag) > maxTagLen || !utf8.ValidString(tag) {
		return false, fmt.Errorf("%w: tag must be 1 to %d bytes of UTF-8", ErrInvalid, maxTagLen)
	}
	changed := false
	err := d.onConv(ctx, id, func(ctx context.Context) error {
		c, err := d.st.Conversation(ctx, id)
		if err != nil {
			return fmt.Errorf("conversation %s: %w", id, errNotFound(err))
		}
		if err := d.mayTag(c, by); err != nil {
			return err
		}
		has := c.HasTag(tag)
		switch {
		case add && has, !add && !has:
			return nil
		case add:
			if len(c.Tags) >= maxTags {
				return fmt.Errorf("%w: more than %d tags", ErrInvalid, maxTags)
			}
			c.Tags = append(slices.Clone(c.Tags), tag)
		default:
			c.Tags = slices.DeleteFunc(slices.Clone(c.Tags), func(t string) bool { return t == tag })
			if len(c.Tags) == 0 {
				c.Tags = nil
			}
		}
		n := hub.Notice{Conv: c, Tag: &hub.TagChange{Tag: tag, Added: add, By: by}, Origin: session}
		if err := d.commitNotice(ctx, &store.Batch{Convs: []model.Conversation{c}}, n); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

// mayTag is mayAct without the visitor (tags are the desk's), and with
// the conversation's followers.
func (d *Desk) mayTag(c model.Conversation, by model.Author) error {
	switch {
	case by.Kind == model.AuthorVisitor:
		return ErrForbidden
	case by.Kind == model.AuthorAgent && c.FollowedBy(model.AgentID(by.ID)):
		return nil
	}
	return d.mayAct(c, by)
}
