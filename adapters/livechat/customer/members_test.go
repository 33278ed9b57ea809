package customer

import (
	"context"
	"testing"

	"chatgate/core/model"
)

// Agents added with visibility all are announced to the customer; agents-
// only additions are not.
func TestCustomerToldOfAddedAgents(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c, _, _ := h.customer(t)
	r := c.Call("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}})
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var started StartChatResponse
	mustUnmarshal(t, r.Payload, &started)
	conv := model.ConvID(started.ThreadID)
	sys := model.System
	steps := []struct {
		agent model.AgentID
		add   bool
		vis   model.Visibility
	}{
		{bob, true, model.VisibleAgents},
		{carol, true, model.VisibleAll},
		{bob, false, model.VisibleAgents},
		{carol, false, model.VisibleAll},
	}
	for _, s := range steps {
		if _, err := h.d.SetMember(ctx, conv, s.agent, s.add, s.vis, sys, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Pushes up to carol's removal, leaving out any for alice (the chat's
	// assignment, if routing gave it to her): carol's two only.
	var users []string
	for len(users) == 0 || users[len(users)-1] != "user_removed_from_chat:"+string(carol) {
		f := c.Await(func(f frame) bool {
			return f.Type == "push" && (f.Action == "user_added_to_chat" || f.Action == "user_removed_from_chat")
		})
		var p struct {
			User   struct{ ID string } `json:"user"`
			UserID string              `json:"user_id"`
		}
		mustUnmarshal(t, f.Payload, &p)
		if id := p.User.ID + p.UserID; id != string(alice) {
			users = append(users, f.Action+":"+id)
		}
	}
	want := []string{"user_added_to_chat:" + string(carol), "user_removed_from_chat:" + string(carol)}
	if len(users) != len(want) || users[0] != want[0] {
		t.Fatalf("pushes %q, want %q", users, want)
	}
}
