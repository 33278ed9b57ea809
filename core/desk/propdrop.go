package desk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"chatgate/core/model"
	"chatgate/store"
)

// dropRetries bounds the attempts to strip one record that other writers
// keep changing (each attempt re-reads it).
const dropRetries = 8

// RunDrops deletes the stored values of unregistered properties (see
// Unregister) until ctx ends: at once for drops left by an earlier run,
// then whenever a property is unregistered, and every minute (another
// node may have unregistered one). Each drop walks every conversation
// (its thread properties and its events') and every visitor (chat
// properties), one record per commit under its revision check, so that
// it never overwrites a concurrent write; it is idempotent, and a drop
// cut short is resumed from the start at the next run (stripping what is
// already stripped changes nothing). logf, if set, is told of failures.
func (p *Properties) RunDrops(ctx context.Context, logf func(err error)) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := p.DropPending(ctx); err != nil && ctx.Err() == nil && logf != nil {
			logf(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// DropPending deletes the values of every property awaiting its drop and
// then lifts the bar on registering it again.
func (p *Properties) DropPending(ctx context.Context) error {
	if p.st == nil {
		return nil
	}
	p.mu.RLock()
	pending := maps.Clone(p.dropping)
	p.mu.RUnlock()
	for k := range pending {
		if err := dropValues(ctx, p.st, k); err != nil {
			return fmt.Errorf("drop property %s.%s: %w", k.ns, k.name, err)
		}
		p.mu.Lock()
		next := maps.Clone(p.dropping)
		delete(next, k)
		err := p.save(ctx, p.registered, next)
		if err == nil {
			p.dropping = next
		}
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// without returns props without k (nil when nothing is left) and whether
// k was there. props is not modified.
func without[V any](props map[string]map[string]V, k propKey) (map[string]map[string]V, bool) {
	if _, ok := props[k.ns][k.name]; !ok {
		return props, false
	}
	out := make(map[string]map[string]V, len(props))
	for ns, m := range props {
		if ns != k.ns {
			out[ns] = m
			continue
		}
		mm := maps.Clone(m)
		delete(mm, k.name)
		if len(mm) > 0 {
			out[ns] = mm
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return out, true
}

// dropValues strips k from every conversation, event and visitor.
func dropValues(ctx context.Context, st store.Store, k propKey) error {
	var errFirst error
	err := st.Conversations(ctx, func(c model.Conversation) bool {
		errFirst = retryStale(ctx, func() error { return dropFromConv(ctx, st, c.ID, k) })
		return errFirst == nil
	})
	if err == nil {
		err = errFirst
	}
	if err != nil {
		return err
	}
	visit := func(id model.VisitorID) error {
		return retryStale(ctx, func() error {
			v, err := st.Visitor(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var had bool
			if v.Props, had = without(v.Props, k); !had {
				return nil
			}
			return st.Commit(ctx, &store.Batch{Visitors: []model.Visitor{v}})
		})
	}
	if vl, ok := st.(store.VisitorLister); ok {
		err = vl.Visitors(ctx, func(v model.Visitor) bool {
			if _, has := v.Props[k.ns][k.name]; has {
				errFirst = visit(v.ID)
			}
			return errFirst == nil
		})
		if err == nil {
			err = errFirst
		}
		return err
	}
	// Chat properties live only on visitors with a conversation.
	seen := make(map[model.VisitorID]struct{})
	err = st.Conversations(ctx, func(c model.Conversation) bool {
		if _, ok := seen[c.Visitor]; !ok {
			seen[c.Visitor] = struct{}{}
			errFirst = visit(c.Visitor)
		}
		return errFirst == nil
	})
	if err == nil {
		err = errFirst
	}
	return err
}

// dropFromConv strips k from one conversation's record and events, in one
// commit written under the conversation's revision (event writers write
// the conversation record too, so a concurrent edit and this exclude one
// another).
func dropFromConv(ctx context.Context, st store.Store, id model.ConvID, k propKey) error {
	c, err := st.Conversation(ctx, id)
	if err != nil {
		return err
	}
	var changed bool
	c.Props, changed = without(c.Props, k)
	evs, err := st.Events(ctx, id, 1, 0)
	if err != nil {
		return err
	}
	var updates []model.Event
	for _, e := range evs {
		var had bool
		if e.Props, had = without(e.Props, k); had {
			updates = append(updates, e)
		}
	}
	if !changed && len(updates) == 0 {
		return nil
	}
	return st.Commit(ctx, &store.Batch{Convs: []model.Conversation{c}, Updates: updates})
}

// retryStale runs fn again while it fails with store.ErrStale.
func retryStale(ctx context.Context, fn func() error) error {
	var err error
	for range dropRetries {
		if err = fn(); !errors.Is(err, store.ErrStale) || ctx.Err() != nil {
			return err
		}
	}
	return err
}
