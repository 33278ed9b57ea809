package agentrtm

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// fanoutAgents are the agents of TestAgentIndexKeepsEveryPush: every kind
// of visibility (all departments, one department, supervisor, admin).
func fanoutAgents() []model.Agent {
	return []model.Agent{
		{ID: alice, Name: "Alice"},
		{ID: bob, Name: "Bob"},
		{ID: carol, Name: "Carol", Departments: []model.DeptID{"sales"}},
		{ID: "dave@example.com", Name: "Dave", Departments: []model.DeptID{"support"}},
		{ID: "sam@example.com", Name: "Sam", Departments: []model.DeptID{"sales"}, Supervisor: true},
		{ID: "ada@example.com", Name: "Ada", Departments: []model.DeptID{"support"}, Admin: true},
		{ID: "zed@example.com", Name: "Zed", Departments: []model.DeptID{"support", "sales"}},
	}
}

// TestAgentIndexKeepsEveryPush checks the bus's agent index
// (hub.Bus.SubscribeAgent) against the pushes it must keep: a desk goes
// through every kind of change an agent is told of (queued and incoming
// chats, assignment, messages, typing, follow and unfollow, members
// added and removed, seen markers, transfers between departments and
// agents, tags, edits, a thread moved to another customer, closes, a
// ban), and for each agent the pushes its session makes from every notice
// of the desk (what it got before the index) are compared, byte for byte
// and in order, with the pushes it makes from the notices its index
// subscription got. The index must also leave some notices out (the
// point of it), and deliver each notice at most once, in publish order.
func TestAgentIndexKeepsEveryPush(t *testing.T) {
	agents := fanoutAgents()
	co := newCoreWith(t, filepath.Join(t.TempDir(), "chatgate.db"), 200, agents)
	surf := New(co.d, Config{LicenseID: "1520", OrganizationID: "org-1", MaxFrame: 8 << 10}, zerolog.Nop())
	bus := co.d.Bus()
	all := bus.SubscribeDesk(4096)
	subs := make([]*hub.Sub, len(agents))
	for i, a := range agents {
		subs[i] = bus.SubscribeAgent(a, 4096)
	}

	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	by := func(a model.AgentID) model.Author {
		return model.Author{Kind: model.AuthorAgent, ID: string(a), Name: string(a)}
	}
	say := func(conv model.ConvID, au model.Author, text string) {
		t.Helper()
		_, _, err := co.d.Post(ctx, desk.PostRequest{Conv: conv, Author: au, Draft: desk.Draft{Kind: model.KindMessage, Text: text}})
		must("post", err)
	}
	visitor := func(v model.Visitor) model.Author {
		return model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: v.Name}
	}

	// Queued chats in each department and in none (incoming_chat to the
	// department's agents).
	tom, tomConv := co.startChat(t, "Tom", "sales")
	uma, umaConv := co.startChat(t, "Uma", "support")
	vic, vicConv := co.startChat(t, "Vic", "")
	say(vicConv.ID, visitor(vic), "anyone?")
	// Assignment, then messages both ways and typing in an assigned chat.
	must("assign tom", co.d.Assign(ctx, tomConv.ID, carol, by(carol), "s1"))
	must("assign uma", co.d.Assign(ctx, umaConv.ID, "dave@example.com", by("dave@example.com"), "s1"))
	say(tomConv.ID, visitor(tom), "my order")
	say(tomConv.ID, by(carol), "looking")
	say(umaConv.ID, visitor(uma), "my invoice")
	must("typing", co.d.Typing(ctx, tomConv.ID, visitor(tom), true, "it is", "s1"))
	must("typing", co.d.Typing(ctx, umaConv.ID, by("dave@example.com"), true, "", "s1"))
	// Following and unfollowing another agent's chat.
	_, err := co.d.Follow(ctx, tomConv.ID, alice, true, "s1")
	must("follow", err)
	say(tomConv.ID, visitor(tom), "still there?")
	_, err = co.d.Follow(ctx, tomConv.ID, alice, false, "s1")
	must("unfollow", err)
	// A member added, told of messages, removed.
	_, err = co.d.SetMember(ctx, umaConv.ID, bob, true, model.VisibleAll, by("dave@example.com"), "s1")
	must("add member", err)
	say(umaConv.ID, by(bob), "hi from bob")
	_, err = co.d.SetMember(ctx, umaConv.ID, bob, false, model.VisibleAll, by("dave@example.com"), "s1")
	must("remove member", err)
	// Seen markers of the visitor and of agents.
	_, err = co.d.MarkSeen(ctx, tom.ID, by(carol), time.Now(), "s1")
	must("seen", err)
	_, err = co.d.MarkSeen(ctx, uma.ID, visitor(uma), time.Now(), "s1")
	must("seen", err)
	_, err = co.d.MarkSeen(ctx, uma.ID, by(alice), time.Now(), "s1")
	must("seen", err)
	// Tags and an edit.
	_, err = co.d.TagThread(ctx, tomConv.ID, by(carol), "vip", true, "s1")
	must("tag", err)
	ev, _, err := co.d.Post(ctx, desk.PostRequest{Conv: tomConv.ID, Author: by(carol), Draft: desk.Draft{Kind: model.KindMessage, Text: "typo"}})
	must("post", err)
	_, err = co.d.EditEvent(ctx, tomConv.ID, ev.Seq, by(carol), "fixed", "s1")
	must("edit", err)
	// Transfers: to another department (carol is told chat_transferred,
	// the queue of support gets it), to an agent.
	must("transfer", co.d.Transfer(ctx, tomConv.ID, "support", by(carol), "s1"))
	say(tomConv.ID, visitor(tom), "hello support")
	must("assign tom to zed", co.d.Assign(ctx, tomConv.ID, "zed@example.com", by("ada@example.com"), "s1"))
	must("assign tom to ada", co.d.Assign(ctx, tomConv.ID, "ada@example.com", by("ada@example.com"), "s1"))
	// A thread moved to another customer, closes (assigned and queued), a
	// ban.
	_, err = co.d.Close(ctx, tomConv.ID, by("ada@example.com"), "", "s1")
	must("close tom", err)
	_, err = co.d.Close(ctx, vicConv.ID, visitor(vic), "", "s1")
	must("close vic", err)
	wes, err := co.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Wes"}, model.Visitor{Name: "Wes"})
	must("ensure wes", err)
	_, err = co.d.ChangeVisitor(ctx, umaConv.ID, uma.ID, wes.ID, by("dave@example.com"))
	must("change visitor", err)
	_, err = co.d.Ban(ctx, vic.ID, 1, by("ada@example.com"), "s1")
	must("ban", err)

	// Every notice, in publish order, from the desk-wide subscription.
	// Notices are published after their commit, synchronously with the
	// desk calls above, so all of them are queued by now.
	order := drain(all)
	if len(order) < 30 {
		t.Fatalf("only %d notices published", len(order))
	}
	pos := make(map[*hub.Notice]int, len(order))
	for i, n := range order {
		pos[n] = i
	}

	left := 0
	for i, a := range agents {
		got := drain(subs[i])
		last := -1
		for _, n := range got {
			p, ok := pos[n]
			if !ok || p <= last {
				t.Fatalf("%s: notice delivered twice or out of order (at %d after %d)", a.ID, p, last)
			}
			last = p
		}
		left += len(order) - len(got)
		before := agentPushes(t, surf, a, order)
		after := agentPushes(t, surf, a, got)
		if len(before) == 0 {
			t.Errorf("%s: no pushes at all: the scenario does not exercise it", a.ID)
		}
		if len(before) != len(after) {
			t.Errorf("%s: %d pushes from every notice, %d from its index's %d notices", a.ID, len(before), len(after), len(got))
		}
		for j := range min(len(before), len(after)) {
			if !bytes.Equal(before[j], after[j]) {
				t.Errorf("%s: push %d differs:\nevery notice: %s\nindex:        %s", a.ID, j, before[j], after[j])
				break
			}
		}
		t.Logf("%s: %d of %d notices, %d pushes", a.ID, len(got), len(order), len(after))
	}
	if left == 0 {
		t.Errorf("the index gave every agent every notice")
	}
}

// drain returns what is queued on s.
func drain(s *hub.Sub) []*hub.Notice {
	var out []*hub.Notice
	for {
		select {
		case n := <-s.C():
			out = append(out, n)
		default:
			return out
		}
	}
}

// agentPushes returns the push frames a fresh logged-in session of agent a
// makes from notices, in order.
func agentPushes(t *testing.T, s *Surface, a model.Agent, notices []*hub.Notice) [][]byte {
	t.Helper()
	var frames [][]byte
	c := s.newClient("3.5", func(f []byte) error {
		frames = append(frames, bytes.Clone(f))
		return nil
	}, func(string) {})
	c.agent = a
	c.loggedIn.Store(true)
	for _, n := range notices {
		if err := c.onNotice(context.Background(), *n); err != nil {
			t.Fatalf("%s: onNotice: %v", a.ID, err)
		}
	}
	return frames
}
