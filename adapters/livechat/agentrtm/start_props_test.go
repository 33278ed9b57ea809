package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/store"
)

// start_chat's chat.properties and chat.thread.properties go through the
// agent's property access (§2.7 start_chat; README "Properties"): refused
// starts open no thread.
func TestAgentStartPropertiesRefused(t *testing.T) {
	f := newFollowSetup(t)
	registerTestProps(t, f.h.d)
	ctx := context.Background()
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	start := func(chatProps, threadProps string) string {
		return fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"}],"properties":%s,"thread":{"properties":%s}}}`, pat.ID, chatProps, threadProps)
	}
	tests := []struct{ name, body, want string }{
		{"chat properties not an object", start(`"x"`, `null`), "validation"},
		{"thread properties not namespaced", start(`null`, `{"tier":"gold"}`), "validation"},
		{"unknown namespace", start(`{"nope":{"x":1}}`, `null`), "validation"},
		{"thread property at chat", start(`{"routing":{"tier":"gold"}}`, `null`), "validation"},
		{"outside the domain", start(`null`, `{"routing":{"tier":"bronze"}}`), "validation"},
		{"agent may only read", start(`{"rating":{"score":3}}`, `null`), "authorization"},
		{"customer only", start(`{"cust":{"secret":"x"}}`, `null`), "authorization"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.a.Call("start_chat", json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			if st, b := f.h.web(t, "tok-alice", "start_chat", tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	if ids, err := f.h.st.VisitorConversations(ctx, pat.ID); err != nil && err != store.ErrNotFound || len(ids) != 0 {
		t.Fatalf("refused starts opened threads: %v %v", ids, err)
	}
}

// start_chat with active:false (§2.7) opens an inactive thread holding the
// initial events and properties, assigned to no routing slot; incoming_chat
// answers it; resume_chat then opens an active thread.
func TestAgentStartInactiveWithProperties(t *testing.T) {
	f := newFollowSetup(t)
	registerTestProps(t, f.h.d)
	ctx := context.Background()
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"}],"thread":{"properties":{"routing":{"tier":"gold"}},"events":[{"type":"message","text":"Ticket noted"}]}},"active":false}`, pat.ID)
	r := f.a.Call("start_chat", json.RawMessage(body))
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var out StartChatResponse
	mustUnmarshal(t, r.Payload, &out)
	if out.ChatID != string(pat.ID) || len(out.EventIDs) != 1 {
		t.Fatalf("response %s", r.Payload)
	}
	var ic IncomingChat
	p := f.a.Await(func(fr frame) bool {
		return fr.Type == "push" && fr.Action == "incoming_chat" && json.Unmarshal(fr.Payload, &ic) == nil && ic.Chat.ID == string(pat.ID)
	})
	th := ic.Chat.Thread
	if p.RID() != r.RID() || th.ID != out.ThreadID || th.Active || len(th.Events) != 1 || th.Events[0].Text != "Ticket noted" ||
		string(th.Properties["routing"]["tier"]) != `"gold"` {
		t.Fatalf("incoming_chat %s rid %q", p.Payload, p.RID())
	}
	conv, err := f.h.st.Conversation(ctx, model.ConvID(out.ThreadID))
	if err != nil || conv.State != model.StateClosed || conv.Agent != alice {
		t.Fatalf("stored thread %+v: %v", conv, err)
	}
	st, b := f.h.web(t, "tok-alice", "get_chat", fmt.Sprintf(`{"chat_id":%q}`, pat.ID))
	var ch wire.Chat
	mustUnmarshal(t, b, &ch)
	if st != 200 || ch.Thread.Active || string(ch.Thread.Properties["routing"]["tier"]) != `"gold"` {
		t.Fatalf("get_chat %d %s", st, b)
	}
	if r := f.a.Call("send_event", map[string]any{"chat_id": string(pat.ID), "event": map[string]any{"type": "message", "text": "x"}}); r.ErrType() != "chat_inactive" {
		t.Fatalf("send_event on the inactive chat: %s", r.Payload)
	}
	r = f.a.Call("resume_chat", map[string]any{"chat": map[string]any{"id": string(pat.ID)}})
	if !r.Success {
		t.Fatalf("resume: %s", r.Payload)
	}
	var res ResumeChatResponse
	mustUnmarshal(t, r.Payload, &res)
	if conv, err := f.h.st.Conversation(ctx, model.ConvID(res.ThreadID)); err != nil || conv.State != model.StateOpen {
		t.Fatalf("resumed thread %+v: %v", conv, err)
	}
}

// start_chat's chat.users may name other agents (§2.7, at most four): they
// are added to the thread from its start, get incoming_chat (requester:
// the starting agent), are among its users and may write in it.
func TestAgentStartWithOtherAgents(t *testing.T) {
	f := newFollowSetup(t) // f.a alice, f.k carol (sales)
	ctx := context.Background()
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"},{"id":%q,"type":"agent"},{"id":%q,"type":"agent"}],"access":{"group_ids":[%d]}}}`,
		pat.ID, alice, alice, groupOf(t, f.h, "sales"))
	r := f.k.Call("start_chat", json.RawMessage(body))
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var out StartChatResponse
	mustUnmarshal(t, r.Payload, &out)
	var ic IncomingChat
	f.a.Await(func(fr frame) bool {
		return fr.Type == "push" && fr.Action == "incoming_chat" && json.Unmarshal(fr.Payload, &ic) == nil && ic.Chat.ID == string(pat.ID)
	})
	if ic.RequesterID != string(carol) || ic.Chat.Thread.ID != out.ThreadID {
		t.Fatalf("alice's incoming_chat %+v", ic)
	}
	want := []string{string(pat.ID), string(carol), string(alice)}
	if got := userIDs(ic.Chat.Users); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("users %q, want %q", got, want)
	}
	if r := f.a.Call("send_event", map[string]any{"chat_id": string(pat.ID), "event": map[string]any{"type": "message", "text": "alice too"}}); !r.Success {
		t.Fatalf("member send_event: %s", r.Payload)
	}
	conv, err := f.h.st.Conversation(ctx, model.ConvID(out.ThreadID))
	if err != nil || fmt.Sprint(conv.Members) != fmt.Sprint([]model.AgentID{alice}) {
		t.Fatalf("members %v: %v", conv.Members, err)
	}
}
