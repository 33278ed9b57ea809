package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// registerTestProps declares: rating.{score 0..5, comment} on chats
// (customer writes, agent reads); cust.secret on chats (customer only);
// routing.tier on threads (agent writes, domain gold/silver); ev.flag on
// events (both write).
func registerTestProps(t *testing.T, d *desk.Desk) {
	t.Helper()
	rw, r := desk.Perm{Read: true, Write: true}, desk.Perm{Read: true}
	defs := []desk.PropDef{
		{Namespace: "rating", Name: "score", Type: desk.PropInt, Range: &desk.PropRange{From: 0, To: 5},
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocChat: {Customer: rw, Agent: r}}},
		{Namespace: "rating", Name: "comment", Type: desk.PropString,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocChat: {Customer: rw, Agent: r}}},
		{Namespace: "cust", Name: "secret", Type: desk.PropString,
			Access: map[desk.PropLocation]desk.RoleAccess{desk.LocChat: {Customer: rw}}},
		{Namespace: "routing", Name: "tier", Type: desk.PropString,
			Domain: []json.RawMessage{json.RawMessage(`"gold"`), json.RawMessage(`"silver"`)},
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

func TestPropertyActionsRefused(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	a, tom, conv := h.aliceServesTom(t)
	chat, thread, event := string(tom.ID), string(conv.ID), wire.EventID(conv.ID, 1)
	tests := []struct {
		name, action, body, want string
	}{
		{"agent may only read the rating", "update_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"rating":{"score":1}}}`, chat), "authorization"},
		{"agent may not delete the rating", "delete_chat_properties",
			fmt.Sprintf(`{"id":%q,"properties":{"rating":["score"]}}`, chat), "authorization"},
		{"tier outside domain", "update_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":"bronze"}}}`, chat, thread), "validation"},
		{"tier of wrong type", "update_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":1}}}`, chat, thread), "validation"},
		{"event property on a thread", "update_thread_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"ev":{"flag":true}}}`, chat, thread), "validation"},
		{"unknown namespace", "update_event_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"nope":{"x":1}}}`, chat, thread, event), "validation"},
		{"deletion of the wrong shape", "delete_event_properties",
			fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":true}}}`, chat, thread, event), "validation"},
		{"missing id", "update_chat_properties", `{"properties":{"rating":{"score":1}}}`, "validation"},
		{"someone else's chat", "update_chat_properties", `{"id":"nope","properties":{"rating":{"score":1}}}`, "not_found"},
		{"send_event with a bad property", "send_event",
			fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x","properties":{"ev":{"flag":"yes"}}}}`, chat), "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var payload json.RawMessage = []byte(tc.body)
			if f := a.Call(tc.action, payload); f.Success || f.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", f.Success, f.ErrType(), tc.want, f.Payload)
			}
			if st, b := h.web(t, "tok-alice", tc.action, tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	// Nothing refused was stored.
	c, err := h.st.Conversation(context.Background(), conv.ID)
	if err != nil || len(c.Props) != 0 {
		t.Fatalf("thread props after refusals: %v %s", err, c.Props)
	}
}

func TestPropertyPushesAndReads(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	ctx := context.Background()
	a, tom, conv := h.aliceServesTom(t)
	chat := string(tom.ID)
	cust := model.Author{Kind: model.AuthorVisitor, ID: chat}
	chatT := desk.PropTarget{Location: desk.LocChat, Visitor: tom.ID}
	type P = map[string]map[string]json.RawMessage
	set := func(p P) {
		t.Helper()
		if err := h.d.UpdateProperties(ctx, chatT, cust, p, ""); err != nil {
			t.Fatalf("customer update %s: %v", p, err)
		}
	}
	pushed := func(action string) string {
		t.Helper()
		var p struct {
			ChatID     string          `json:"chat_id"`
			ThreadID   *string         `json:"thread_id"`
			Properties json.RawMessage `json:"properties"`
		}
		mustUnmarshal(t, a.Push(action).Payload, &p)
		if p.ChatID != chat || p.ThreadID != nil {
			t.Fatalf("%s: chat_id %q thread_id %v", action, p.ChatID, p.ThreadID)
		}
		return string(p.Properties)
	}

	set(P{"rating": {"score": json.RawMessage(`4`), "comment": json.RawMessage(`"good"`)}})
	if got := pushed("chat_properties_updated"); got != `{"rating":{"comment":"good","score":4}}` {
		t.Fatalf("first push: %s", got)
	}
	// Only the changed key; a property the agent may not read is never
	// pushed (the next push is the one after it).
	set(P{"rating": {"score": json.RawMessage(`4`), "comment": json.RawMessage(`"better"`)}})
	if got := pushed("chat_properties_updated"); got != `{"rating":{"comment":"better"}}` {
		t.Fatalf("second push: %s", got)
	}
	set(P{"cust": {"secret": json.RawMessage(`"s"`)}})
	if err := h.d.DeleteProperties(ctx, chatT, cust, map[string][]string{"rating": {"comment"}, "cust": {"secret"}}, ""); err != nil {
		t.Fatal(err)
	}
	if got := pushed("chat_properties_deleted"); got != `{"rating":["comment"]}` {
		t.Fatalf("delete push: %s", got)
	}
	set(P{"cust": {"secret": json.RawMessage(`"s2"`)}})

	// The agent's own thread update: response, then the push with its
	// request_id.
	body := fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":"gold"}}}`, chat, conv.ID)
	rid := a.Send("update_thread_properties", json.RawMessage(body))
	if f := a.Response(rid); !f.Success {
		t.Fatalf("update_thread_properties: %s", f.Payload)
	}
	f := a.Push("thread_properties_updated")
	if f.RID() != rid || string(f.Payload) != fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"properties":{"routing":{"tier":"gold"}}}`, chat, conv.ID) {
		t.Fatalf("thread push: rid %q %s", f.RID(), f.Payload)
	}
	// Event properties over the Web API.
	evID := wire.EventID(conv.ID, 1)
	if st, b := h.web(t, "tok-alice", "update_event_properties",
		fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":true}}}`, chat, conv.ID, evID)); st != 200 {
		t.Fatalf("web update_event_properties: %d %s", st, b)
	}
	if f := a.Push("event_properties_updated"); string(f.Payload) != fmt.Sprintf(`{"chat_id":%q,"thread_id":%q,"event_id":%q,"properties":{"ev":{"flag":true}}}`, chat, conv.ID, evID) {
		t.Fatalf("event push: %s", f.Payload)
	}

	// Reads: the agent sees what it may read, never cust.secret.
	r := a.Call("get_chat", map[string]any{"chat_id": chat})
	var got wire.Chat
	mustUnmarshal(t, r.Payload, &got)
	if s, _ := json.Marshal(got.Properties); string(s) != `{"rating":{"score":4}}` {
		t.Errorf("get_chat properties: %s", s)
	}
	if s, _ := json.Marshal(got.Thread.Properties); string(s) != `{"routing":{"tier":"gold"}}` {
		t.Errorf("get_chat thread properties: %s", s)
	}
	if s, _ := json.Marshal(got.Thread.Events[0].Properties); string(s) != `{"ev":{"flag":true}}` {
		t.Errorf("get_chat event properties: %s", s)
	}
	var lc struct {
		ChatsSummary []wire.ChatSummary `json:"chats_summary"`
	}
	mustUnmarshal(t, a.Call("list_chats", map[string]any{}).Payload, &lc)
	if len(lc.ChatsSummary) != 1 {
		t.Fatalf("list_chats: %+v", lc)
	}
	if s, _ := json.Marshal(lc.ChatsSummary[0].Properties); string(s) != `{"rating":{"score":4}}` {
		t.Errorf("list_chats properties: %s", s)
	}
}
