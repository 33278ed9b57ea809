package desk

import (
	"context"

	"chatgate/core/hub"
	"chatgate/store"
)

// commitNotice commits b with the deliveries n owes (Options.NoticeOutbox)
// in the same batch, then publishes n. Changes that append no events
// (properties, members, tags, seen markers) go through it, so that a
// webhook delivery exists exactly when its change does, as for events.
func (d *Desk) commitNotice(ctx context.Context, b *store.Batch, n hub.Notice) error {
	if d.nOutbox != nil {
		b.Outbox = append(b.Outbox, d.nOutbox(n)...)
	}
	// Not cancelled with the caller, as in commit.
	if err := d.st.Commit(context.WithoutCancel(ctx), b); err != nil {
		return err
	}
	d.bus.Publish(n)
	return nil
}
