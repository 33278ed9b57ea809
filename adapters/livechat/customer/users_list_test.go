package customer

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

// A customer's chat lists the agents added with visibility "all" among its
// users (get_chat over RTM and Web API, list_chats, thread.user_ids); those
// added with visibility "agents" never show, and removed ones go away.
func TestCustomerSeesAddedAgentsInUsers(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c, me, tok := h.customer(t)
	r := c.Call("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}})
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var started StartChatResponse
	mustUnmarshal(t, r.Payload, &started)
	conv := model.ConvID(started.ThreadID)
	set := func(agent model.AgentID, add bool, vis model.Visibility) {
		t.Helper()
		if _, err := h.d.SetMember(ctx, conv, agent, add, vis, model.System, ""); err != nil {
			t.Fatal(err)
		}
	}
	set(bob, true, model.VisibleAgents)
	set(carol, true, model.VisibleAll)

	check := func(t *testing.T, wantCarol bool) {
		t.Helper()
		st, b, _ := h.post(t, "/v3.5/customer/action/get_chat?organization_id=org-1", tok, fmt.Sprintf(`{"chat_id":%q}`, me), nil)
		if st != 200 {
			t.Fatalf("web get_chat: %d %s", st, b)
		}
		rr := c.Call("get_chat", map[string]any{"chat_id": string(me)})
		if !rr.Success {
			t.Fatalf("rtm get_chat: %s", rr.Payload)
		}
		lr := c.Call("list_chats", map[string]any{})
		var lc ListChatsResponse
		mustUnmarshal(t, lr.Payload, &lc)
		if len(lc.ChatsSummary) != 1 {
			t.Fatalf("list_chats: %s", lr.Payload)
		}
		views := map[string][]string{"list_chats": userIDs(lc.ChatsSummary[0].Users)}
		for name, raw := range map[string][]byte{"web get_chat": b, "rtm get_chat": rr.Payload} {
			var ch wire.Chat
			mustUnmarshal(t, raw, &ch)
			views[name] = userIDs(ch.Users)
			views[name+" thread.user_ids"] = ch.Thread.UserIDs
		}
		for name, ids := range views {
			if len(ids) == 0 || ids[0] != string(me) {
				t.Errorf("%s: %q does not start with the customer", name, ids)
			}
			if slices.Contains(ids, string(bob)) {
				t.Errorf("%s: %q shows the agents-only member", name, ids)
			}
			if slices.Contains(ids, string(carol)) != wantCarol {
				t.Errorf("%s: %q, carol listed should be %v", name, ids, wantCarol)
			}
		}
	}
	t.Run("added", func(t *testing.T) { check(t, true) })
	set(carol, false, model.VisibleAll)
	t.Run("removed", func(t *testing.T) { check(t, false) })
}

func userIDs(us []wire.User) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}
