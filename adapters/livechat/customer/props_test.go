package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// registerTestProps declares: rating.score (0..5) on chats (customer
// writes, agent reads); notes.internal on chats (agents only);
// routing.{pinned (agents only), tier (customer reads)} on threads;
// ev.flag on events (both write).
func registerTestProps(t *testing.T, d *desk.Desk) {
	t.Helper()
	rw, r := desk.Perm{Read: true, Write: true}, desk.Perm{Read: true}
	defs := []desk.PropDef{
		{Namespace: "rating", Name: "score", Type: desk.PropInt, Range: &desk.PropRange{From: 0, To: 5},
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocChat: {Customer: rw, Agent: r}}},
		{Namespace: "notes", Name: "internal", Type: desk.PropString,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocChat: {Agent: rw}}},
		{Namespace: "routing", Name: "pinned", Type: desk.PropBool,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocThread: {Agent: rw}}},
		{Namespace: "routing", Name: "tier", Type: desk.PropString,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocThread: {Agent: rw, Customer: r}}},
		{Namespace: "ev", Name: "flag", Type: desk.PropBool,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocEvent: {Agent: rw, Customer: rw}}},
	}
	for _, d0 := range defs {
		if err := d.Properties().Register(context.Background(), d0); err != nil {
			t.Fatalf("register %s.%s: %v", d0.Namespace, d0.Name, err)
		}
	}
}

// startedChat logs a customer in and starts its chat.
func startedChat(t *testing.T, h *harness) (*rtm, model.VisitorID, string, model.ConvID) {
	t.Helper()
	c, me, tok := h.customer(t)
	resp := c.Call("start_chat", startPayload("hello"))
	if !resp.Success {
		t.Fatalf("start_chat: %s", resp.Payload)
	}
	var started StartChatResponse
	mustUnmarshal(t, resp.Payload, &started)
	c.Push("incoming_chat")
	return c, me, tok, model.ConvID(started.ThreadID)
}

func TestCustomerPropertyActionsRefused(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	c, me, tok, conv := startedChat(t, h)
	chat, thread, event := string(me), string(conv), wire.EventID(conv, 1)
	tests := []struct {
		name, action, body, want string
	}{
		{"score outside range", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"rating":{"score":9}}}`, chat), "validation"},
		{"score of wrong type", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"rating":{"score":"4"}}}`, chat), "validation"},
		{"unknown namespace", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"nope":{"x":1}}}`, chat), "validation"},
		{"unknown name", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"rating":{"x":1}}}`, chat), "validation"},
		{"chat property on a thread", "update_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"rating":{"score":1}}}`, chat, thread), "validation"},
		{"agents-only chat property", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"notes":{"internal":"x"}}}`, chat), "authorization"},
		{"read-only thread property", "update_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":"gold"}}}`, chat, thread), "authorization"},
		{"delete without write access", "delete_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":["pinned"]}}`, chat, thread), "authorization"},
		{"event of another thread", "update_event_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":"X_1","properties":{"ev":{"flag":true}}}`, chat, thread), "not_found"},
		{"event property of the wrong type", "update_event_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":"on"}}}`, chat, thread, event), "validation"},
		{"another chat", "update_chat_properties", `{"id":"nope","properties":{"rating":{"score":1}}}`, "not_found"},
		{"send_event with a bad property", "send_event",
			fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x","properties":{"ev":{"flag":1}}}}`, chat), "validation"},
		{"send_event with an unknown property", "send_event",
			fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x","properties":{"nope":{"flag":true}}}}`, chat), "validation"},
		{"send_event with a thread property", "send_event",
			fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x","properties":{"routing":{"tier":"gold"}}}}`, chat), "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f := c.Call(tc.action, json.RawMessage(tc.body)); f.Success || f.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", f.Success, f.ErrType(), tc.want, f.Payload)
			}
			st, b, _ := h.post(t, "/v3.5/customer/action/"+tc.action+"?organization_id=org-1", tok, tc.body, nil)
			var e errorBody
			mustUnmarshal(t, b, &e)
			if st < 400 || e.Error.Type != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	v, err := h.st.Visitor(context.Background(), me)
	if err != nil || len(v.Props) != 0 {
		t.Fatalf("chat props after refusals: %v %s", err, v.Props)
	}
}

func TestCustomerPropertyPushesAndReads(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	ctx := context.Background()
	c, me, tok, conv := startedChat(t, h)
	chat := string(me)
	agent := model.Author{Kind: model.AuthorAgent, ID: string(alice), Name: "Alice"}
	type P = map[string]map[string]json.RawMessage
	threadT := desk.PropTarget{Location: desk.LocThread, Visitor: me, Conv: conv}

	// An agent's change the customer may not read is not pushed; of a
	// mixed change, only the readable keys are.
	if err := h.d.UpdateProperties(ctx, desk.PropTarget{Location: desk.LocChat, Visitor: me}, agent,
		P{"notes": {"internal": json.RawMessage(`"vip"`)}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.d.UpdateProperties(ctx, threadT, agent,
		P{"routing": {"pinned": json.RawMessage(`true`), "tier": json.RawMessage(`"gold"`)}}, ""); err != nil {
		t.Fatal(err)
	}
	f := c.Await(func(f frame) bool {
		return f.Type == "push" && len(f.Action) > 11 && f.Action[len(f.Action)-11:] == "ies_updated"
	})
	want := fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":"gold"}}}`, chat, conv)
	if f.Action != "thread_properties_updated" || string(f.Payload) != want || f.RID() != "" {
		t.Fatalf("push %s %s (rid %q), want thread_properties_updated %s", f.Action, f.Payload, f.RID(), want)
	}

	// The customer's own update over RTM: answered, then pushed (only the
	// changed keys).
	if r := c.Call("update_chat_properties", map[string]any{"id": chat, "properties": map[string]any{"rating": map[string]any{"score": 4}}}); !r.Success {
		t.Fatalf("update_chat_properties: %s", r.Payload)
	}
	if f := c.Push("chat_properties_updated"); string(f.Payload) != fmt.Sprintf(`{"chat_id":%q,"properties":{"rating":{"score":4}}}`, chat) {
		t.Fatalf("chat push: %s", f.Payload)
	}
	// Over the Web API (pushes reach the RTM connection).
	evID := wire.EventID(conv, 1)
	st, b, _ := h.post(t, "/v3.5/customer/action/update_event_properties?organization_id=org-1", tok,
		fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":true}}}`, chat, conv, evID), nil)
	if st != 200 {
		t.Fatalf("web update_event_properties: %d %s", st, b)
	}
	if f := c.Push("event_properties_updated"); string(f.Payload) != fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":true}}}`, chat, conv, evID) {
		t.Fatalf("event push: %s", f.Payload)
	}
	if err := h.d.DeleteProperties(ctx, threadT, agent, map[string][]string{"routing": {"pinned", "tier"}}, ""); err != nil {
		t.Fatal(err)
	}
	if f := c.Push("thread_properties_deleted"); string(f.Payload) != fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":["tier"]}}`, chat, conv) {
		t.Fatalf("delete push: %s", f.Payload)
	}
	if err := h.d.UpdateProperties(ctx, threadT, agent, P{"routing": {"tier": json.RawMessage(`"silver"`), "pinned": json.RawMessage(`true`)}}, ""); err != nil {
		t.Fatal(err)
	}
	c.Push("thread_properties_updated")

	// Reads hide what the customer may not read.
	var got wire.Chat
	mustUnmarshal(t, c.Call("get_chat", map[string]any{"chat_id": chat}).Payload, &got)
	if s, _ := json.Marshal(got.Properties); string(s) != `{"rating":{"score":4}}` {
		t.Errorf("get_chat properties: %s", s)
	}
	if s, _ := json.Marshal(got.Thread.Properties); string(s) != `{"routing":{"tier":"silver"}}` {
		t.Errorf("get_chat thread properties: %s", s)
	}
	if s, _ := json.Marshal(got.Thread.Events[0].Properties); string(s) != `{"ev":{"flag":true}}` {
		t.Errorf("get_chat event properties: %s", s)
	}
	var lc ListChatsResponse
	mustUnmarshal(t, c.Call("list_chats", map[string]any{}).Payload, &lc)
	if len(lc.ChatsSummary) != 1 {
		t.Fatalf("list_chats: %+v", lc)
	}
	if s, _ := json.Marshal(lc.ChatsSummary[0].Properties); string(s) != `{"rating":{"score":4}}` {
		t.Errorf("list_chats properties: %s", s)
	}
}
