package desk

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

func TestTransfer(t *testing.T) {
	t.Run("to an available agent of the department", func(t *testing.T) {
		e := newEnv(t, config{})
		e.online("ann", "bob")
		c, _ := e.start(e.visitor("vera"), "sales")
		if c.Agent != "ann" {
			t.Fatalf("agent = %s", c.Agent)
		}
		if err := e.d.Transfer(context.Background(), c.ID, "support", agentAuthor("ann"), ""); err != nil {
			t.Fatal(err)
		}
		got := e.conv(c.ID)
		if got.Department != "support" || got.State != model.StateOpen || got.Agent != "bob" {
			t.Fatalf("after transfer: %s/%s/%s", got.Department, got.State, got.Agent)
		}
		log := e.checkLog(c.ID)
		tail := log[len(log)-2:]
		if !slices.Equal(kinds(tail), []string{"system_message/chat_transferred", "system_message/agent_joined"}) {
			t.Fatalf("events = %v", kinds(log))
		}
		if v := tail[0].Vars; v["from_department"] != "sales" || v["to_department"] != "support" || v["from_agent"] != "ann" || v["by_id"] != "ann" {
			t.Fatalf("transfer vars = %v", v)
		}
		e.wantOpen(map[model.AgentID]int{"ann": 0, "bob": 1})
		e.wantQueued()
	})

	t.Run("queues when nobody serves the department", func(t *testing.T) {
		e := newEnv(t, config{})
		e.run()
		e.online("ann")
		c, _ := e.start(e.visitor("vera"), "sales")
		if err := e.d.Transfer(context.Background(), c.ID, "support", agentAuthor("ann"), ""); err != nil {
			t.Fatal(err)
		}
		got := e.conv(c.ID)
		if got.Department != "support" || got.State != model.StateQueued || got.Agent != "" {
			t.Fatalf("after transfer: %s/%s/%q", got.Department, got.State, got.Agent)
		}
		e.wantOpen(map[model.AgentID]int{"ann": 0, "bob": 0})
		e.wantQueued(c.ID)
		// The previous agent may no longer post (it is not her department).
		if _, _, err := e.d.Post(context.Background(), PostRequest{Conv: c.ID, Author: agentAuthor("ann"), Draft: Draft{Text: "x"}}); !errors.Is(err, ErrForbidden) {
			t.Fatalf("previous agent Post = %v, want ErrForbidden", err)
		}

		sub := e.bus.SubscribeConv(c.ID, 8)
		defer sub.Close()
		e.online("bob")
		waitFor(t, sub, "assignment to bob", assignedTo(c.ID, "bob"))
		e.eventuallyQueued()
		e.wantOpen(map[model.AgentID]int{"ann": 0, "bob": 1})
	})

	t.Run("same agent keeps it", func(t *testing.T) {
		e := newEnv(t, config{agents: []model.Agent{dan, ann}})
		e.online("dan")
		c, _ := e.start(e.visitor("vera"), "sales")
		if err := e.d.Transfer(context.Background(), c.ID, "support", agentAuthor("dan"), ""); err != nil {
			t.Fatal(err)
		}
		got := e.conv(c.ID)
		if got.Agent != "dan" || got.State != model.StateOpen || got.Department != "support" {
			t.Fatalf("after transfer: %s/%s/%s", got.Department, got.State, got.Agent)
		}
		e.wantOpen(map[model.AgentID]int{"dan": 1})
	})

	t.Run("queued conversation moves to the other department's queue", func(t *testing.T) {
		e := newEnv(t, config{})
		ctx := context.Background()
		s1, _ := e.start(e.visitor("a"), "sales")
		p1, _ := e.start(e.visitor("b"), "support")
		s2, _ := e.start(e.visitor("c"), "sales")
		e.wantQueued(s1.ID, p1.ID, s2.ID)
		if e.router.Position(s1.ID) != 1 || e.router.Position(s2.ID) != 2 || e.router.Position(p1.ID) != 1 {
			t.Fatal("positions before transfer")
		}
		if err := e.d.Transfer(ctx, s1.ID, "support", model.System, ""); err != nil {
			t.Fatal(err)
		}
		// s1 now waits behind p1 in support; s2 leads sales.
		for id, want := range map[model.ConvID]int{p1.ID: 1, s1.ID: 2, s2.ID: 1} {
			if got := e.router.Position(id); got != want {
				t.Errorf("Position(%s) = %d, want %d", id, got, want)
			}
		}
		if got := e.router.Queued(); len(got) != 3 {
			t.Fatalf("Queued = %v, want 3 entries", got)
		}
	})

	t.Run("refused", func(t *testing.T) {
		e := newEnv(t, config{})
		ctx := context.Background()
		e.online("ann")
		v := e.visitor("vera")
		c, _ := e.start(v, "sales")
		before := e.conv(c.ID).LastSeq
		tests := []struct {
			name string
			dept model.DeptID
			by   model.Author
			want error
		}{
			{"unknown department", "legal", visitorAuthor(v), ErrInvalid},
			{"another visitor", "support", visitorAuthor(e.visitor("mallory")), ErrForbidden},
			{"agent not serving it", "support", agentAuthor("cat"), ErrForbidden},
		}
		for _, tc := range tests {
			if err := e.d.Transfer(ctx, c.ID, tc.dept, tc.by, ""); !errors.Is(err, tc.want) {
				t.Errorf("%s: Transfer = %v, want %v", tc.name, err, tc.want)
			}
		}
		if e.conv(c.ID).LastSeq != before {
			t.Fatal("refused transfer wrote")
		}
		e.wantOpen(map[model.AgentID]int{"ann": 1, "bob": 0, "cat": 0})
		if _, err := e.d.Close(ctx, c.ID, visitorAuthor(v), "", ""); err != nil {
			t.Fatal(err)
		}
		if err := e.d.Transfer(ctx, c.ID, "support", visitorAuthor(v), ""); !errors.Is(err, ErrInactive) {
			t.Fatalf("Transfer closed = %v, want ErrInactive", err)
		}
		if err := e.d.Transfer(ctx, "nope", "support", visitorAuthor(v), ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Transfer unknown = %v, want ErrNotFound", err)
		}
	})
}

func TestAssign(t *testing.T) {
	e := newEnv(t, config{})
	ctx := context.Background()
	e.online("ann")
	admin := agentAuthor("ann")

	c, _ := e.start(e.visitor("vera"), "sales")
	sub := e.bus.SubscribeConv(c.ID, 8)
	defer sub.Close()
	// cat is offline: a manual assignment does not care.
	if err := e.d.Assign(ctx, c.ID, "cat", admin, ""); err != nil {
		t.Fatal(err)
	}
	got := e.conv(c.ID)
	if got.Agent != "cat" || got.State != model.StateOpen {
		t.Fatalf("after Assign: %s/%s", got.State, got.Agent)
	}
	log := e.checkLog(c.ID)
	tail := log[len(log)-2:]
	if !slices.Equal(kinds(tail), []string{"system_message/chat_transferred", "system_message/agent_joined"}) {
		t.Fatalf("events = %v", kinds(log))
	}
	if v := tail[0].Vars; v["from_agent"] != "ann" || v["to_agent"] != "cat" || v["by_id"] != "ann" || v["by_kind"] != "agent" {
		t.Fatalf("transfer vars = %v", v)
	}
	n := waitFor(t, sub, "assign notice", assignedTo(c.ID, "cat"))
	if len(n.Events) != 2 || n.Events[0].ID != tail[0].ID {
		t.Fatalf("notice events = %v", kinds(n.Events))
	}
	e.wantOpen(map[model.AgentID]int{"ann": 0, "cat": 1})

	// Assigning to the serving agent changes nothing.
	if err := e.d.Assign(ctx, c.ID, "cat", admin, ""); err != nil {
		t.Fatal(err)
	}
	if e.conv(c.ID).LastSeq != got.LastSeq {
		t.Fatal("Assign to the same agent wrote events")
	}
	e.wantOpen(map[model.AgentID]int{"cat": 1})

	// A queued conversation: only "joined", and it leaves the queue.
	q, _ := e.start(e.visitor("quinn"), "support")
	e.wantQueued(q.ID)
	if err := e.d.Assign(ctx, q.ID, "bob", model.System, ""); err != nil {
		t.Fatal(err)
	}
	if log := e.checkLog(q.ID); !slices.Equal(kinds(log), []string{"system_message/agent_joined"}) {
		t.Fatalf("queued assign events = %v", kinds(log))
	}
	e.wantQueued()
	e.wantOpen(map[model.AgentID]int{"bob": 1})

	if err := e.d.Assign(ctx, c.ID, "mallory", admin, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Assign to unknown agent = %v, want ErrNotFound", err)
	}
	if err := e.d.Assign(ctx, "nope", "ann", admin, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Assign unknown conversation = %v, want ErrNotFound", err)
	}
	if _, err := e.d.Close(ctx, c.ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Assign(ctx, c.ID, "ann", admin, ""); !errors.Is(err, ErrInactive) {
		t.Fatalf("Assign closed = %v, want ErrInactive", err)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 0, "cat": 0, "bob": 1})
}

// Moving a conversation away from an agent at MaxChats frees her for the
// queue, as closing one does.
func TestAssignAwayFreesAgentForQueue(t *testing.T) {
	e := newEnv(t, config{agents: []model.Agent{withMax(ann, 1), cat}})
	e.run()
	e.online("ann")
	c1, _ := e.start(e.visitor("a"), "sales")
	c2, _ := e.start(e.visitor("b"), "sales")
	if c1.Agent != "ann" || c2.State != model.StateQueued {
		t.Fatalf("setup: %s/%s, %s", c1.State, c1.Agent, c2.State)
	}
	sub := e.bus.SubscribeConv(c2.ID, 8)
	defer sub.Close()
	if err := e.d.Assign(context.Background(), c1.ID, "cat", model.System, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, "queued conversation assigned to the freed agent", assignedTo(c2.ID, "ann"))
	e.eventuallyQueued()
	e.wantOpen(map[model.AgentID]int{"ann": 1, "cat": 1})
}

// An agent who becomes available between Start's routing decision and its
// queueing of the conversation must still get it.
func TestStartQueuesRacingAgentArrival(t *testing.T) {
	var e *env
	var once atomic.Bool
	e = newEnv(t, config{afterCommit: func(b *store.Batch, err error) {
		if err != nil || len(b.Convs) != 1 || b.Convs[0].State != model.StateQueued || !once.CompareAndSwap(false, true) {
			return
		}
		// Start has committed a queued conversation (no agent was
		// available) and not yet put it in the router's queue. Ann comes
		// online now, and the desk's Run loop takes the kick and drains the
		// queue, which does not hold the conversation yet.
		e.d.AgentConnected("ann", true)
		select {
		case <-e.d.kick:
		default:
			t.Error("the arriving agent did not kick")
		}
		e.d.drainQueue(context.Background())
	}})
	sub := e.bus.SubscribeDesk(16)
	defer sub.Close()
	c, _ := e.start(e.visitor("vera"), "sales")
	if c.State != model.StateQueued {
		t.Fatalf("state = %s, want queued", c.State)
	}
	e.run()
	waitFor(t, sub, "assignment to the agent who arrived", assignedTo(c.ID, "ann"))
}

// An agent who becomes available while Run is part-way through the queue
// must not be given a younger conversation of a department whose older one
// was passed over moments before.
func TestDrainKeepsFIFOWhenAgentArrivesMidPass(t *testing.T) {
	var (
		e      *env
		armed  atomic.Bool
		second atomic.Value // model.ConvID
	)
	e = newEnv(t, config{agents: []model.Agent{withMax(ann, 1), bob}, beforeRead: func(id model.ConvID) {
		// The pass has tried the oldest conversation and is about to read
		// the next one: ann comes online right now.
		if armed.Load() && id == second.Load() && armed.CompareAndSwap(true, false) {
			e.d.AgentConnected("ann", true)
		}
	}})
	c0, _ := e.start(e.visitor("a"), "sales")
	c1, _ := e.start(e.visitor("b"), "sales")
	e.wantQueued(c0.ID, c1.ID)
	second.Store(c1.ID)
	armed.Store(true)
	// The pass Run makes on a kick, then the one the arrival's kick causes.
	e.d.drainQueue(context.Background())
	if armed.Load() {
		t.Fatal("hook did not fire")
	}
	select {
	case <-e.d.kick:
	default:
		t.Fatal("the arriving agent did not kick")
	}
	e.d.drainQueue(context.Background())
	if got := e.conv(c0.ID); got.Agent != "ann" {
		t.Fatalf("oldest conversation has agent %q; ann went to a younger one (c1 agent %q)", got.Agent, e.conv(c1.ID).Agent)
	}
	e.wantQueued(c1.ID)
}

func TestLoadRebuildsRouter(t *testing.T) {
	ctx := context.Background()
	first := newEnv(t, config{})
	first.online("ann")
	open1, _ := first.start(first.visitor("a"), "sales")
	open2, _ := first.start(first.visitor("b"), "sales")
	q1, _ := first.start(first.visitor("c"), "support")
	q2, _ := first.start(first.visitor("d"), "support")
	closedV := first.visitor("e")
	closed, _ := first.start(closedV, "sales")
	if _, err := first.d.Close(ctx, closed.ID, visitorAuthor(closedV), "", ""); err != nil {
		t.Fatal(err)
	}
	// A conversation transferred away from ann: counted for cat now.
	moved, _ := first.start(first.visitor("f"), "sales")
	if err := first.d.Assign(ctx, moved.ID, "cat", model.System, ""); err != nil {
		t.Fatal(err)
	}
	if open1.Agent != "ann" || open2.Agent != "ann" || q1.State != model.StateQueued || q2.State != model.StateQueued {
		t.Fatal("setup went another way")
	}
	if err := first.bolt.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: a new desk, router and bus over the same file.
	e := newEnv(t, config{path: first.path})
	e.wantOpen(map[model.AgentID]int{"ann": 0})
	if err := e.d.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 2, "bob": 0, "cat": 1})
	e.wantQueued(q1.ID, q2.ID)
	if e.router.Position(q1.ID) != 1 || e.router.Position(q2.ID) != 2 {
		t.Fatalf("positions = %d, %d", e.router.Position(q1.ID), e.router.Position(q2.ID))
	}
	// Every agent starts offline after a restart.
	for _, id := range []model.AgentID{"ann", "bob", "cat"} {
		if s := e.router.Status(id); s != "offline" {
			t.Fatalf("Status(%s) = %s after restart", id, s)
		}
	}

	// The rebuilt queue is served, oldest first, once bob connects.
	e.run()
	sub := e.bus.SubscribeDesk(16)
	defer sub.Close()
	e.online("bob")
	var order []model.ConvID
	for len(order) < 2 {
		n := waitFor(t, sub, "assignments after restart", func(n hub.Notice) bool { return n.Conv.State == model.StateOpen })
		if n.Conv.Agent != "bob" {
			t.Fatalf("%s assigned to %s", n.Conv.ID, n.Conv.Agent)
		}
		order = append(order, n.Conv.ID)
	}
	if !slices.Equal(order, []model.ConvID{q1.ID, q2.ID}) {
		t.Fatalf("assigned %v, want %v", order, []model.ConvID{q1.ID, q2.ID})
	}
	e.eventuallyQueued()
	e.wantOpen(map[model.AgentID]int{"ann": 2, "bob": 2, "cat": 1})

	// And the loaded counts are released as usual.
	if _, err := e.d.Close(ctx, open1.ID, model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	e.wantOpen(map[model.AgentID]int{"ann": 1})
}
