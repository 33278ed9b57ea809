package hub

import (
	"slices"
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
