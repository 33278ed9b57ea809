package customer

import (
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/adapters/livechat/wire"
)

// start_chat's chat.properties and chat.thread.properties go through the
// customer's property access (§2.5 start_chat): refused starts open no
// thread, so a later start succeeds.
func TestCustomerStartPropertiesRefused(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	c, _, tok := h.customer(t)
	start := func(chatProps, threadProps string) string {
		return fmt.Sprintf(`{"chat":{"properties":%s,"thread":{"properties":%s,"events":[{"type":"message","text":"hi"}]}}}`, chatProps, threadProps)
	}
	tests := []struct{ name, body, want string }{
		{"chat properties not an object", start(`[1]`, `null`), "validation"},
		{"thread properties not namespaced", start(`null`, `{"tier":"x"}`), "validation"},
		{"unknown property", start(`{"rating":{"nope":1}}`, `null`), "validation"},
		{"out of range", start(`{"rating":{"score":9}}`, `null`), "validation"},
		{"agents only", start(`{"notes":{"internal":"x"}}`, `null`), "authorization"},
		{"customer may only read", start(`null`, `{"routing":{"tier":"gold"}}`), "authorization"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.Call("start_chat", json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			st, b, _ := h.post(t, "/v3.5/customer/action/start_chat?organization_id=org-1", tok, tc.body, nil)
			if st < 400 || !containsType(b, tc.want) {
				t.Errorf("web: %d %s, want %s", st, b, tc.want)
			}
		})
	}
	if r := c.Call("start_chat", json.RawMessage(start(`{"rating":{"score":4}}`, `null`))); !r.Success {
		t.Fatalf("start after refusals: %s", r.Payload)
	}
}

// start_chat with active:false (§2.5: "active (default true)") creates the
// chat with an inactive thread holding the events and the initial
// properties; incoming_chat answers it (the customer SDK waits for it),
// send_event answers chat_inactive and resume_chat opens an active thread.
func TestCustomerStartInactiveWithProperties(t *testing.T) {
	h := newHarness(t, nil)
	registerTestProps(t, h.d)
	c, me, tok := h.customer(t)
	r := c.Call("start_chat", map[string]any{"active": false, "continuous": true, "chat": map[string]any{
		"properties": map[string]any{"rating": map[string]any{"score": 4}},
		"thread":     map[string]any{"events": []any{map[string]any{"type": "message", "text": "offline note"}}}}})
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var out StartChatResponse
	mustUnmarshal(t, r.Payload, &out)
	p := c.Push("incoming_chat")
	var ic IncomingChat
	mustUnmarshal(t, p.Payload, &ic)
	if p.RID() != r.RID() || ic.Chat.Thread.ID != out.ThreadID || ic.Chat.Thread.Active || len(ic.Chat.Thread.Events) != 1 ||
		string(ic.Chat.Properties["rating"]["score"]) != "4" {
		t.Fatalf("incoming_chat %s rid %q", p.Payload, p.RID())
	}
	st, b, _ := h.post(t, "/v3.5/customer/action/get_chat?organization_id=org-1", tok, fmt.Sprintf(`{"chat_id":%q}`, me), nil)
	var ch wire.Chat
	mustUnmarshal(t, b, &ch)
	if st != 200 || ch.Thread.Active || ch.Thread.Events[0].Text != "offline note" || string(ch.Properties["rating"]["score"]) != "4" {
		t.Fatalf("get_chat %d %s", st, b)
	}
	if r := c.Call("send_event", map[string]any{"chat_id": string(me), "event": map[string]any{"type": "message", "text": "x"}}); r.ErrType() != "chat_inactive" {
		t.Fatalf("send_event: %s", r.Payload)
	}
	r = c.Call("resume_chat", map[string]any{"chat": map[string]any{"id": string(me)}})
	if !r.Success {
		t.Fatalf("resume: %s", r.Payload)
	}
	var ic2 IncomingChat
	p = c.Await(func(fr frame) bool {
		return fr.Type == "push" && fr.Action == "incoming_chat" && json.Unmarshal(fr.Payload, &ic2) == nil && ic2.Chat.Thread.ID != out.ThreadID
	})
	if !ic2.Chat.Thread.Active || p.RID() != r.RID() {
		t.Fatalf("resumed incoming_chat %s", p.Payload)
	}
}
