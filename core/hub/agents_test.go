package hub

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"chatgate/core/model"
)

// TestAgentIndexOffers pins which agent sessions each kind of notice is
// offered to (package agentrtm's TestAgentIndexKeepsEveryPush checks
// that no push is lost by it), and that ended subscriptions leave the
// index.
func TestAgentIndexOffers(t *testing.T) {
	agents := []model.Agent{
		{ID: "any"}, // serves every department
		{ID: "ann", Departments: []model.DeptID{"sales"}},
		{ID: "sue", Departments: []model.DeptID{"sales"}, Supervisor: true},
		{ID: "adm", Departments: []model.DeptID{"support"}, Admin: true},
		{ID: "tom", Departments: []model.DeptID{"support"}},
	}
	sales := func(agent model.AgentID) model.Conversation {
		return model.Conversation{ID: "c1", Visitor: "v1", Department: "sales", State: model.StateOpen, Agent: agent}
	}
	for _, tc := range []struct {
		name string
		n    Notice
		want []model.AgentID
	}{
		{"message in an assigned chat: its agent and the department's supervisors",
			Notice{Conv: sales("ann"), Events: []model.Event{{Kind: model.KindMessage}}}, []model.AgentID{"ann", "sue"}},
		{"typing", Notice{Conv: sales("tom"), Typing: &Typing{On: true}}, []model.AgentID{"tom", "sue"}},
		{"queued chat: everyone serving the department",
			Notice{Conv: model.Conversation{ID: "c1", Department: "sales", State: model.StateQueued}, Created: true},
			[]model.AgentID{"any", "ann", "sue"}},
		{"queued chat of no department: everyone",
			Notice{Conv: model.Conversation{ID: "c1", State: model.StateQueued}}, []model.AgentID{"any", "ann", "sue", "adm", "tom"}},
		{"closed unassigned", Notice{Conv: model.Conversation{ID: "c1", Department: "support", State: model.StateClosed}},
			[]model.AgentID{"any", "adm", "tom"}},
		{"followers and members",
			Notice{Conv: model.Conversation{ID: "c1", Department: "support", State: model.StateOpen, Agent: "tom",
				Followers: []model.AgentID{"ann"}, HiddenMembers: []model.AgentID{"any"}}},
			[]model.AgentID{"any", "ann", "adm", "tom"}},
		{"unfollow names the agent", Notice{Conv: sales("tom"), Follow: &FollowChange{Agent: "any"}}, []model.AgentID{"any", "sue", "tom"}},
		{"member removed names the agent", Notice{Conv: sales("ann"), Member: &MemberChange{Agent: "adm"}}, []model.AgentID{"ann", "sue", "adm"}},
		{"seen marker names its user", Notice{Conv: sales("ann"), Seen: &SeenChange{User: "tom", Kind: model.AuthorAgent}}, []model.AgentID{"ann", "sue", "tom"}},
		{"transfer names both agents",
			Notice{Conv: sales("any"), Events: []model.Event{{Kind: model.KindSystem, Subtype: model.SysTransferred,
				Vars: map[string]string{"from_agent": "tom", "to_agent": "any"}}}},
			[]model.AgentID{"any", "sue", "tom"}},
		{"ban: everyone", Notice{Conv: model.Conversation{Visitor: "v1"}, Ban: &BanChange{Visitor: "v1"}},
			[]model.AgentID{"any", "ann", "sue", "adm", "tom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBus()
			subs := make([]*Sub, len(agents))
			for i, a := range agents {
				subs[i] = b.SubscribeAgent(a, 4)
			}
			b.Publish(tc.n)
			var got []model.AgentID
			for i, s := range subs {
				switch len(s.C()) {
				case 0:
				case 1:
					got = append(got, agents[i].ID)
				default:
					t.Errorf("%s got the notice %d times", agents[i].ID, len(s.C()))
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("offered to %v, want %v", got, want)
			}
			for _, s := range subs {
				s.Close()
			}
			if n := b.Subscribers(); n != 0 {
				t.Errorf("%d subscribers after closing all", n)
			}
		})
	}
}

// BenchmarkFanOutToAgents publishes messages of conversations served by
// one of 32 agents, each agent session drained by its own goroutine that
// checks whether the notice is its agent's (as package agentrtm's pump
// does), and waits for every pump to be done: every session subscribed
// to the whole desk (before the agent index) against by agent.
func BenchmarkFanOutToAgents(b *testing.B) {
	const agents = 32
	for _, mode := range []string{"desk", "index"} {
		b.Run(mode, func(b *testing.B) {
			bus := NewBus()
			ids := make([]model.AgentID, agents)
			var pending sync.WaitGroup
			done := make(chan struct{})
			defer close(done)
			for i := range ids {
				ids[i] = model.AgentID(fmt.Sprintf("agent-%d", i))
				var s *Sub
				if mode == "desk" {
					s = bus.SubscribeDesk(1 << 16)
				} else {
					s = bus.SubscribeAgent(model.Agent{ID: ids[i]}, 1<<16)
				}
				go func(me model.AgentID) {
					kept := 0
					for {
						select {
						case <-done:
							return
						case n := <-s.C():
							if n.Conv.Agent == me {
								kept++
							}
							pending.Done()
						}
					}
				}(ids[i])
			}
			convs := make([]model.Conversation, 1000)
			for i := range convs {
				convs[i] = model.Conversation{ID: model.ConvID(fmt.Sprintf("conv-%d", i)), Visitor: model.VisitorID(fmt.Sprintf("v-%d", i)),
					State: model.StateOpen, Agent: ids[i%agents]}
			}
			per := 1
			if mode == "desk" {
				per = agents
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pending.Add(per)
				bus.Publish(Notice{Conv: convs[i%len(convs)], Events: []model.Event{{Kind: model.KindMessage}}})
			}
			pending.Wait()
		})
	}
}
