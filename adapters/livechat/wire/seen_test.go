package wire

import (
	"testing"
	"time"

	"chatgate/core/model"
)

// events_seen_up_to: the stored marker, or the user's own latest event if
// later (writing marks as seen, §2.5); agents-only members are hidden from
// customers but keep their marker for agents.
func TestUsersSeenUpTo(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cust, ann, bob := model.VisitorID("v1"), model.AgentID("ann@x"), model.AgentID("bob@x")
	d := ChatData{
		Visitor: model.Visitor{ID: cust, SeenUpTo: map[string]time.Time{string(ann): t0.Add(time.Hour), string(bob): t0}},
		Conv:    model.Conversation{ID: "c1", Visitor: cust, State: model.StateOpen, Agent: ann, Members: []model.AgentID{bob}, HiddenMembers: []model.AgentID{bob}},
		Agent:   &model.Agent{ID: ann, Name: "Ann"},
		Members: []model.Agent{{ID: bob, Name: "Bob"}},
		Events: []model.Event{
			{Seq: 1, Author: model.Author{Kind: model.AuthorVisitor, ID: string(cust)}, At: t0.Add(time.Minute)},
			{Seq: 2, Author: model.Author{Kind: model.AuthorAgent, ID: string(ann)}, At: t0.Add(2 * time.Minute)},
			{Seq: 3, Author: model.Author{Kind: model.AuthorAgent, ID: string(bob)}, At: t0.Add(3 * time.Minute)},
		},
	}
	tests := []struct {
		aud  Audience
		want map[string]string
	}{
		{ForAgent, map[string]string{string(cust): Time(t0.Add(time.Minute)), string(ann): Time(t0.Add(time.Hour)), string(bob): Time(t0.Add(3 * time.Minute))}},
		{ForCustomer, map[string]string{string(cust): Time(t0.Add(time.Minute)), string(ann): Time(t0.Add(time.Hour))}},
	}
	for _, tc := range tests {
		users, ids := d.users(tc.aud)
		if len(users) != len(tc.want) || len(ids) != len(tc.want) {
			t.Fatalf("audience %d: users %+v", tc.aud, users)
		}
		for _, u := range users {
			if w, ok := tc.want[u.ID]; !ok || u.EventsSeenUpTo != w {
				t.Errorf("audience %d: %s seen %q, want %q", tc.aud, u.ID, u.EventsSeenUpTo, w)
			}
		}
	}
}
