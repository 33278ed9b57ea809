package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/postgres"
	"chatgate/store/postgres/pgtest"
)

// clusterNode is one node's desk and cluster parts over its own store
// instance on a shared schema.
type clusterNode struct {
	st     *postgres.Store
	router *routing.Router
	coord  *Coordinator
	bus    *hub.Bus
	desk   *desk.Desk
}

func newClusterNode(t *testing.T, st *postgres.Store, name string, agents []model.Agent) *clusterNode {
	t.Helper()
	return newClusterNodePolling(t, st, name, agents, presencePoll)
}

// newClusterNodePolling is newClusterNode whose presence loop re-reads the
// tables every poll besides when told (wired as serve wires it).
func newClusterNodePolling(t *testing.T, st *postgres.Store, name string, agents []model.Agent, poll time.Duration) *clusterNode {
	t.Helper()
	n := &clusterNode{st: st, router: routing.New(agents, true), bus: hub.NewBus()}
	log := zerolog.Nop()
	n.coord = NewCoordinator(st.Pool(), name, 2*time.Second, n.router, log)
	n.coord.poll = poll
	br := NewBroker(st, name, log)
	br.OnPresence(n.coord.Poke)
	cl := hub.NewCluster(n.bus, br, st, name, func(err error) { t.Errorf("%s: %v", name, err) })
	n.desk = desk.New(desk.Options{Store: st, Router: n.router, Bus: n.bus, Logger: log, Coordinator: n.coord})
	if err := n.desk.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = n.desk.Run(ctx) })
	wg.Go(func() { _ = n.coord.Run(ctx, n.desk.Kick) })
	wg.Go(func() { _ = cl.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start opens a conversation for a new visitor through n.
func (n *clusterNode) start(t *testing.T, i int) model.Conversation {
	t.Helper()
	v, err := n.desk.EnsureVisitor(t.Context(), store.MapKey{System: "test", Kind: "visitor", Foreign: fmt.Sprintf("v%d", i)},
		model.Visitor{Name: fmt.Sprintf("visitor %d", i)})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := n.desk.Start(t.Context(), desk.StartRequest{Visitor: v.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)},
		Events: []desk.Draft{{Text: "hello"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRoutingAcrossNodesKeepsMaxChats: an agent connected to node A is
// online on node B too; conversations started at once on both nodes give
// the agent exactly max_chats of them (the routing lock), the rest wait
// in the deployment's queue, and a freed slot takes the oldest queued one
// whichever node queued it.
func TestRoutingAcrossNodesKeepsMaxChats(t *testing.T) {
	sa, sb := twoNodes(t)
	agents := []model.Agent{{ID: "jane", Name: "Jane", MaxChats: 2}}
	a, b := newClusterNode(t, sa, "a", agents), newClusterNode(t, sb, "b", agents)
	a.desk.AgentConnected("jane", true)
	waitFor(t, "node b to see jane online", func() bool { return b.router.Status("jane") == routing.Accepting })

	var wg sync.WaitGroup
	convs := make([]model.Conversation, 8)
	for i := range convs {
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Go(func() { convs[i] = n.start(t, i) })
	}
	wg.Wait()
	open, queued := 0, 0
	for _, c := range convs {
		got, err := sa.Conversation(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch got.State {
		case model.StateOpen:
			open++
		case model.StateQueued:
			queued++
		}
	}
	if open != 2 || queued != 6 {
		t.Fatalf("%d open, %d queued; want 2 and 6 (max_chats 2)", open, queued)
	}

	// Close one of jane's chats on node B: the oldest queued chat, started
	// on either node, is hers next.
	var oldest model.Conversation
	for _, c := range convs {
		got, _ := sa.Conversation(t.Context(), c.ID)
		if got.State == model.StateQueued && (oldest.ID == "" || got.CreatedAt.Before(oldest.CreatedAt)) {
			oldest = got
		}
	}
	for _, c := range convs {
		got, _ := sa.Conversation(t.Context(), c.ID)
		if got.State == model.StateOpen {
			if _, err := b.desk.Close(t.Context(), got.ID, model.Author{Kind: model.AuthorAgent, ID: "jane"}, "done", ""); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	waitFor(t, "the oldest queued chat to be assigned", func() bool {
		got, _ := sa.Conversation(t.Context(), oldest.ID)
		return got.State == model.StateOpen && got.Agent == "jane"
	})
	time.Sleep(300 * time.Millisecond)
	if n := openOf(t, sa, convs, "jane"); n != 2 {
		t.Fatalf("jane serves %d chats, max 2", n)
	}
}

func openOf(t *testing.T, st store.Store, convs []model.Conversation, agent model.AgentID) int {
	t.Helper()
	n := 0
	for _, c := range convs {
		got, err := st.Conversation(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == model.StateOpen && got.Agent == agent {
			n++
		}
	}
	return n
}

// TestAgentOfDeadNodeGoesOffline: an agent whose only session is on a node
// that stopped renewing (kill -9: its row stays, unrenewed) is online until
// the lease expires, then offline everywhere, and new chats queue instead
// of going to it.
func TestAgentOfDeadNodeGoesOffline(t *testing.T) {
	sa, _ := twoNodes(t)
	agents := []model.Agent{{ID: "jane", Name: "Jane"}}
	a := newClusterNode(t, sa, "a", agents)
	// The dead node's last renewal: a lease that ends in 1.5 s.
	if _, err := sa.Pool().Exec(t.Context(), `INSERT INTO agent_sessions (agent, node, sessions, expires_at)
VALUES ('jane', 'dead', 1, now() + interval '1.5 seconds')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "jane online through the dead node's lease", func() bool { return a.router.Status("jane") == routing.Accepting })
	waitFor(t, "jane offline once the lease expired", func() bool { return a.router.Status("jane") == routing.Offline })
	c := a.start(t, 1)
	if c.State != model.StateQueued || c.Agent != "" {
		t.Fatalf("chat started after the lease expired: %s to %q, want queued", c.State, c.Agent)
	}
}

// TestPresencePushedAcrossNodes: with the presence poll made an hour long,
// only the presence notification can carry a change: an agent connecting
// on node A, changing her status there and leaving are seen by node B's
// router (and a chat queued on B while she was away is hers once she is
// back).
func TestPresencePushedAcrossNodes(t *testing.T) {
	sa, sb := twoNodes(t)
	agents := []model.Agent{{ID: "jane", Name: "Jane"}}
	a := newClusterNodePolling(t, sa, "a", agents, time.Hour)
	b := newClusterNodePolling(t, sb, "b", agents, time.Hour)
	time.Sleep(200 * time.Millisecond) // both listening
	c := b.start(t, 1)
	if c.State != model.StateQueued {
		t.Fatalf("chat started with nobody online: %s, want queued", c.State)
	}
	// Each change's delay as node b saw it (logged, not asserted).
	var took []string
	seen := func(what string, change func(), want routing.Status) {
		t.Helper()
		at := time.Now()
		change()
		waitFor(t, "node b to see jane "+what, func() bool { return b.router.Status("jane") == want })
		took = append(took, fmt.Sprintf("%s %v", what, time.Since(at).Round(time.Millisecond)))
	}
	seen("online", func() { a.desk.AgentConnected("jane", true) }, routing.Accepting)
	waitFor(t, "the queued chat routed to jane", func() bool {
		got, err := sb.Conversation(t.Context(), c.ID)
		return err == nil && got.State == model.StateOpen && got.Agent == "jane"
	})
	seen("not accepting", func() { a.desk.SetAccepting("jane", false) }, routing.NotAccepting)
	seen("accepting", func() { a.desk.SetAccepting("jane", true) }, routing.Accepting)
	seen("offline", func() { a.desk.AgentConnected("jane", false) }, routing.Offline)
	t.Logf("presence changes seen on the other node without polling after: %s", strings.Join(took, ", "))
}

// TestBrokerCrossesNodes: notices committed on node A reach a session on
// node B through LISTEN/NOTIFY, in order, once; one too large for a
// notification (a property change of 20 KB) crosses too.
func TestBrokerCrossesNodes(t *testing.T) {
	sa, sb := twoNodes(t)
	agents := []model.Agent{{ID: "jane", Name: "Jane"}}
	a, b := newClusterNode(t, sa, "a", agents), newClusterNode(t, sb, "b", agents)
	time.Sleep(200 * time.Millisecond) // both listening
	sub := b.bus.SubscribeDesk(4096)
	defer sub.Close()
	c := a.start(t, 1)
	const n = 200
	var wg sync.WaitGroup
	// Writers on both nodes at once: the database orders them.
	var sent atomic.Int64
	for w := range 2 {
		node := a
		if w == 1 {
			node = b
		}
		wg.Go(func() {
			for i := 0; i < n/2; i++ {
				_, _, err := node.desk.Post(t.Context(), desk.PostRequest{Conv: c.ID,
					Author: model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}, Draft: desk.Draft{Text: fmt.Sprintf("m%d-%d", w, i)}})
				if err != nil {
					t.Error(err)
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	big := strings.Repeat("x", 20000)
	a.bus.Publish(hub.Notice{Conv: c, Typing: &hub.Typing{Author: model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}, On: true, Text: big}})
	next := uint64(1)
	last := c.LastSeq + uint64(sent.Load())
	timeout := time.After(20 * time.Second)
	sawBig := false
	for next <= last || !sawBig {
		select {
		case nt := <-sub.C():
			if nt.Conv.ID != c.ID {
				continue
			}
			for _, e := range nt.Events {
				if e.Seq != next {
					t.Fatalf("node b got seq %d, want %d", e.Seq, next)
				}
				next++
			}
			if nt.Typing != nil && nt.Typing.Text == big {
				sawBig = true
			}
		case <-timeout:
			t.Fatalf("node b stopped at seq %d of %d (big typing seen: %v)", next-1, last, sawBig)
		}
	}
}

// TestLeaseTakenOverWhenHolderStops: one holder at a time; a lease whose
// holder stopped renewing is taken when it expires.
// TestBrokerRecognisesOwnPointers: the listener drops this node's own
// pointers by their first bytes, so the encoding must begin with the node.
func TestBrokerRecognisesOwnPointers(t *testing.T) {
	for _, node := range []string{"a", "node-1", `we"ird`} {
		b := NewBroker(nil, node, zerolog.Nop())
		own, err := hub.MarshalWire(&hub.Wire{Node: node, N: 7, Conv: "c1", From: 1, To: 2})
		if err != nil {
			t.Fatal(err)
		}
		other, err := hub.MarshalWire(&hub.Wire{Node: node + "x", N: 7, Conv: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(own), b.self) || strings.HasPrefix(string(other), b.self) {
			t.Fatalf("node %q: prefix %q, own %s, other %s", node, b.self, own, other)
		}
	}
}

// twoNodes opens two stores on one schema: two nodes on one database.
func twoNodes(t *testing.T) (*postgres.Store, *postgres.Store) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	var out [2]*postgres.Store
	for i := range out {
		s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatalf("Open node %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// TestRouteSeesAgentJustConnected: once an agent's login (AgentConnected)
// or status change (SetAccepting) on node A has returned, and so has been
// answered to the agent's client, a chat started on node B is routed as
// one node would route it: to the agent just connected, not to the queue
// (queued first, the chat reached the agent twice: incoming_chat queued,
// then incoming_chat assigned), and never to an agent who just stopped
// accepting. The presence poll is an hour, so nothing but the login's own
// write and B's read under the routing lock can carry it in time.
func TestRouteSeesAgentJustConnected(t *testing.T) {
	sa, sb := twoNodes(t)
	var agents []model.Agent
	for i := range 4 {
		agents = append(agents, model.Agent{ID: model.AgentID(fmt.Sprintf("agent%d", i)), Name: "Agent", MaxChats: 1})
	}
	a := newClusterNodePolling(t, sa, "a", agents, time.Hour)
	b := newClusterNodePolling(t, sb, "b", agents, time.Hour)
	// Each agent takes one chat (max_chats 1): the next start can only
	// go to the agent connected just before it.
	for i, ag := range agents[:3] {
		a.desk.AgentConnected(ag.ID, true)
		if c := b.start(t, i); c.State != model.StateOpen || c.Agent != ag.ID {
			t.Fatalf("chat %d started on b right after %s connected on a: %s to %q", i, ag.ID, c.State, c.Agent)
		}
	}
	last := agents[3].ID
	a.desk.AgentConnected(last, true)
	a.desk.SetAccepting(last, false)
	c := b.start(t, 3)
	if c.State != model.StateQueued {
		t.Fatalf("chat started on b right after %s stopped accepting on a: %s to %q, want queued", last, c.State, c.Agent)
	}
	a.desk.SetAccepting(last, true)
	waitFor(t, "the queued chat to go to "+string(last), func() bool {
		got, _ := sa.Conversation(t.Context(), c.ID)
		return got.State == model.StateOpen && got.Agent == last
	})
}
