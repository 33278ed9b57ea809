// Package backfill is the part of a backfill every upstream desk shares:
// it finds the visitors a relay connector carries, gathers each one's
// earlier conversations (those the connector did not carry: served by
// embedded agents, imported from another vendor, or from before the
// relay), hands them to the desk, and records in the store (meta
// "backfill/<connector>/visitor/<id>") that a visitor is done, so a run
// stopped midway resumes where it stopped and a second run sends nothing.
// How the history reaches the desk (and how the desk recognises what is
// already there, for a run killed between a send and its record) is the
// Desk's: adapters/rocketchat/backfill, adapters/livechat/backfill.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// Options configure a backfill run.
type Options struct {
	// Connector is the relay connector's name.
	Connector string
	// DryRun counts what would be sent; the desk sends nothing and the
	// store is not written.
	DryRun bool
	// Progress, if set, is told of every visitor handled.
	Progress func(n int)
}

// Conversation is an earlier conversation with its events, in seq order.
type Conversation struct {
	model.Conversation
	Events []model.Event
}

// History is what a desk gets for one relayed visitor.
type History struct {
	Visitor model.Visitor
	// Upstream is the visitor's id on the desk (the relay's KindVisitor
	// mapping: a Rocket.Chat token, a LiveChat customer id).
	Upstream string
	// Relayed are the conversations the connector carries, oldest first
	// (at least one).
	Relayed []model.Conversation
	// Rooms are the upstream rooms of Relayed, index for index (the
	// relay's KindRoom mapping; "" when the conversation has none yet).
	Rooms []string
	// Earlier are the conversations it did not carry, oldest first.
	Earlier []Conversation
}

// Result is what a desk did with one visitor's history, in the desk's
// units (Rocket.Chat: messages; LiveChat: transcript events).
type Result struct {
	// Sent were sent (or, in a dry run, would be).
	Sent int
	// Present were found upstream already and not sent again.
	Present int
}

// Desk sends histories into one upstream desk.
type Desk interface {
	// Login is called once before the first visitor.
	Login(ctx context.Context) error
	// Send sends h upstream, leaving out what is there already; with
	// dryRun it only counts.
	Send(ctx context.Context, h *History, dryRun bool) (Result, error)
	// Requests is the number of requests made so far.
	Requests() int64
}

// RPS is a desk's request rate: 10 a second unless set.
func RPS(rps float64) float64 {
	if rps == 0 {
		return 10
	}
	return rps
}

// Summary says what a backfill did.
type Summary struct {
	Visitors        int       `json:"visitors"`
	VisitorsDone    int       `json:"visitors_backfilled"`
	VisitorsSkipped int       `json:"visitors_skipped"`
	Messages        int       `json:"messages_sent"`
	MessagesPresent int       `json:"messages_skipped"`
	Failed          int       `json:"failed"`
	Failures        []Failure `json:"failures,omitempty"`
	Requests        int64     `json:"requests"`
	DryRun          bool      `json:"dry_run,omitempty"`
	Seconds         float64   `json:"seconds"`
}

// Failure is a visitor not backfilled, and why.
type Failure struct {
	Visitor string `json:"visitor"`
	Reason  string `json:"reason"`
}

// ProgressKey is the meta key recording that a visitor was backfilled
// through a connector.
func ProgressKey(conn string, v model.VisitorID) string {
	return "backfill/" + conn + "/visitor/" + string(v)
}

// Run backfills every visitor the connector carries into desk.
func Run(ctx context.Context, st store.Store, desk Desk, o Options) (Summary, error) {
	start := time.Now()
	r := &runner{o: o, st: st, desk: desk}
	r.sum.DryRun = o.DryRun
	err := r.run(ctx)
	r.sum.Requests = desk.Requests()
	r.sum.Seconds = time.Since(start).Seconds()
	return r.sum, err
}

type runner struct {
	o    Options
	st   store.Store
	desk Desk
	sum  Summary
}

func (r *runner) run(ctx context.Context) error {
	if err := r.desk.Login(ctx); err != nil {
		return err
	}
	// The visitors whose conversations the connector carries; the set
	// grows with them (not with events).
	seen := map[model.VisitorID]bool{}
	var visitors []model.VisitorID
	err := r.st.Conversations(ctx, func(c model.Conversation) bool {
		if c.Owner == r.o.Connector && !seen[c.Visitor] {
			seen[c.Visitor] = true
			visitors = append(visitors, c.Visitor)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, v := range visitors {
		r.sum.Visitors++
		if err := r.visitor(ctx, v); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.sum.Failed++
			if len(r.sum.Failures) < 100 {
				r.sum.Failures = append(r.sum.Failures, Failure{Visitor: string(v), Reason: err.Error()})
			}
		}
		if r.o.Progress != nil {
			r.o.Progress(1)
		}
	}
	return nil
}

func (r *runner) visitor(ctx context.Context, v model.VisitorID) error {
	key := ProgressKey(r.o.Connector, v)
	if _, err := r.st.Meta(ctx, key); err == nil {
		r.sum.VisitorsSkipped++
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	h, err := r.history(ctx, v)
	if errors.Is(err, store.ErrNotFound) {
		r.sum.VisitorsSkipped++ // never reached the upstream desk
		return nil
	}
	if err != nil {
		return err
	}
	res, err := r.desk.Send(ctx, h, r.o.DryRun)
	r.sum.Messages += res.Sent
	r.sum.MessagesPresent += res.Present
	if err != nil {
		return err
	}
	r.sum.VisitorsDone++
	if r.o.DryRun {
		return nil
	}
	events := 0
	for _, c := range h.Earlier {
		events += len(c.Events)
	}
	done, _ := json.Marshal(map[string]any{"at": time.Now().UTC(), "sent": res.Sent, "present": res.Present, "events": events})
	return r.st.Commit(ctx, &store.Batch{Meta: map[string][]byte{key: done}})
}

// history gathers a visitor's conversations; store.ErrNotFound when the
// visitor has no upstream id (it never reached the desk).
func (r *runner) history(ctx context.Context, v model.VisitorID) (*History, error) {
	up, err := r.st.Reverse(ctx, relay.System(r.o.Connector), "", relay.KindVisitor, string(v))
	if err != nil {
		return nil, err
	}
	vis, err := r.st.Visitor(ctx, v)
	if err != nil {
		return nil, err
	}
	h := &History{Visitor: vis, Upstream: up}
	ids, err := r.st.VisitorConversations(ctx, v)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		c, err := r.st.Conversation(ctx, id)
		if err != nil {
			return nil, err
		}
		if c.Owner == r.o.Connector {
			h.Relayed = append(h.Relayed, c)
			continue
		}
		evs, err := r.st.Events(ctx, id, 1, 0)
		if err != nil {
			return nil, err
		}
		h.Earlier = append(h.Earlier, Conversation{Conversation: c, Events: evs})
	}
	slices.SortStableFunc(h.Relayed, func(a, b model.Conversation) int { return a.CreatedAt.Compare(b.CreatedAt) })
	slices.SortStableFunc(h.Earlier, func(a, b Conversation) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, c := range h.Relayed {
		room, err := r.st.Reverse(ctx, relay.System(r.o.Connector), "", relay.KindRoom, string(c.ID))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		h.Rooms = append(h.Rooms, room)
	}
	return h, nil
}
