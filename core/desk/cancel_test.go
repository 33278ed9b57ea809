package desk

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"chatgate/core/model"
	"chatgate/store"
)

// lateCancelStore behaves as store/bolt does when a caller's context ends
// while its batch waits in the commit queue: the batch is written, and the
// caller is told ctx.Err(). When armed, the next Commit writes the batch,
// then cancels the caller's request and reports that.
type lateCancelStore struct {
	store.Store
	cancel atomic.Pointer[context.CancelFunc]
}

func (s *lateCancelStore) Commit(ctx context.Context, b *store.Batch) error {
	if err := s.Store.Commit(context.WithoutCancel(ctx), b); err != nil {
		return err
	}
	if c := s.cancel.Swap(nil); c != nil {
		(*c)()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// A request whose context ends during its commit must leave the desk's
// memory (queue, open counts) agreeing with what the commit wrote.
func TestCommitOutlivesCallerContext(t *testing.T) {
	e := newEnv(t, config{agents: []model.Agent{withMax(ann, 1), bob}})
	ls := &lateCancelStore{Store: e.bolt}
	e.d.st = ls
	e.run()
	request := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		ls.cancel.Store(&cancel)
		return ctx
	}

	// Queued, with the caller gone during the commit.
	v := e.visitor("vera")
	c, _, err := e.d.Start(request(), StartRequest{Visitor: v.ID, Department: "sales"})
	if err != nil {
		t.Fatalf("Start = %v, though its conversation was written", err)
	}
	if got := e.conv(c.ID); got.State != model.StateQueued {
		t.Fatalf("state = %s, want queued", got.State)
	}
	e.wantQueued(c.ID)

	// It is routed when ann arrives.
	sub := e.bus.SubscribeConv(c.ID, 8)
	defer sub.Close()
	e.online("ann")
	waitFor(t, sub, "assignment", assignedTo(c.ID, "ann"))
	e.eventuallyQueued()

	// Closed, with the caller gone during the commit: ann is free again.
	if _, err := e.d.Close(request(), c.ID, visitorAuthor(v), "", ""); err != nil {
		t.Fatalf("Close = %v, though it was written", err)
	}
	if got := e.conv(c.ID); got.State != model.StateClosed {
		t.Fatalf("state = %s, want closed", got.State)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 0})
}
