package wire

import (
	"context"
	"fmt"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// Source reads what renderings need. Surfaces fill it from their desk
// (Store, Router().Agent, Router().Position, Now).
type Source struct {
	Store         store.Store
	Agent         func(model.AgentID) (model.Agent, bool)
	QueuePosition func(model.ConvID) int
	Now           func() time.Time
	// Props is the property configuration (see ChatData.Props).
	Props *desk.Properties
}

// SourceOf is the Source reading d's store, router and properties.
func SourceOf(d *desk.Desk) Source {
	return Source{Store: d.Store(), Agent: d.Router().Agent, QueuePosition: d.Router().Position,
		Now: d.Now, Props: d.Properties()}
}

// LoadOptions choose which events Load reads.
type LoadOptions struct {
	// UpTo is the last sequence number to include; 0 means all.
	UpTo uint64
	// Last, if > 0, keeps only the last Last events up to UpTo (for
	// summaries).
	Last int
	// Neighbour, if set, decides whether a neighbouring thread may be
	// named in previous_thread_id / next_thread_id; nil names none.
	Neighbour func(model.Conversation) bool
}

// Load reads conv's visitor, serving agent, events and neighbours.
func (s Source) Load(ctx context.Context, conv model.Conversation, o LoadOptions) (ChatData, error) {
	d := ChatData{Conv: conv, Props: s.Props}
	if s.Now != nil {
		d.Now = s.Now()
	}
	v, err := s.Store.Visitor(ctx, conv.Visitor)
	if err != nil {
		return d, fmt.Errorf("visitor %s: %w", conv.Visitor, err)
	}
	d.Visitor = v
	if conv.Agent != "" && s.Agent != nil {
		if a, ok := s.Agent(conv.Agent); ok {
			d.Agent = &a
		} else {
			// An agent removed from configuration still served this thread.
			d.Agent = &model.Agent{ID: conv.Agent, Name: string(conv.Agent)}
		}
	}
	d.Members = MembersOf(&conv, s.Agent)
	upTo := conv.LastSeq
	if o.UpTo > 0 && o.UpTo < upTo {
		upTo = o.UpTo
	}
	from := uint64(1)
	if o.Last > 0 && upTo > uint64(o.Last) {
		from = upTo - uint64(o.Last) + 1
	}
	if upTo >= from {
		evs, err := s.Store.Events(ctx, conv.ID, from, int(upTo-from+1))
		if err != nil {
			return d, fmt.Errorf("events of %s: %w", conv.ID, err)
		}
		d.Events = evs
	}
	if conv.State == model.StateQueued && s.QueuePosition != nil {
		d.QueuePos = s.QueuePosition(conv.ID)
	}
	if o.Neighbour != nil {
		if err := s.neighbours(ctx, &d, o.Neighbour); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (s Source) neighbours(ctx context.Context, d *ChatData, ok func(model.Conversation) bool) error {
	ids, err := s.Store.VisitorConversations(ctx, d.Visitor.ID)
	if err != nil {
		return fmt.Errorf("threads of %s: %w", d.Visitor.ID, err)
	}
	for i, id := range ids {
		if id != d.Conv.ID {
			continue
		}
		if i > 0 {
			if c, err := s.Store.Conversation(ctx, ids[i-1]); err == nil && ok(c) {
				d.Prev = c.ID
			}
		}
		if i+1 < len(ids) {
			if c, err := s.Store.Conversation(ctx, ids[i+1]); err == nil && ok(c) {
				d.Next = c.ID
			}
		}
		break
	}
	return nil
}
