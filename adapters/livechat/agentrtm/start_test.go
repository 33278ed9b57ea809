package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/core/model"
	"chatgate/store"
)

func TestAgentStartResumeRefused(t *testing.T) {
	f := newFollowSetup(t) // alice: Tom (sales, active), Una (support, active), Vic (sales, closed); carol: sales
	ctx := context.Background()
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	sales, support := groupOf(t, f.h, "sales"), groupOf(t, f.h, "support")
	users := func(id model.VisitorID) string { return fmt.Sprintf(`[{"id":%q,"type":"customer"}]`, id) }
	tests := []struct {
		name, action, body, want string
	}{
		{"missing chat", "start_chat", `{}`, "validation"},
		{"chat wrong type", "start_chat", `{"chat":"x"}`, "validation"},
		{"no customer", "start_chat", `{"chat":{"users":[]}}`, "validation"},
		{"two customers", "start_chat", fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"},{"id":%q,"type":"customer"}]}}`, pat.ID, f.tom.ID), "validation"},
		{"unknown agent", "start_chat", fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"},{"id":"nobody@example.com","type":"agent"}]}}`, pat.ID), "not_found"},
		{"agent without id", "start_chat", fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"},{"type":"agent"}]}}`, pat.ID), "validation"},
		{"unknown user type", "start_chat", fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"bot"}]}}`, pat.ID), "validation"},
		{"users wrong type", "start_chat", `{"chat":{"users":"Pat"}}`, "validation"},
		{"events wrong type", "start_chat", fmt.Sprintf(`{"chat":{"users":%s,"thread":{"events":"hi"}}}`, users(pat.ID)), "validation"},
		{"empty message", "start_chat", fmt.Sprintf(`{"chat":{"users":%s,"thread":{"events":[{"type":"message","text":""}]}}}`, users(pat.ID)), "validation"},
		{"unknown customer", "start_chat", `{"chat":{"users":[{"id":"NOPE","type":"customer"}]}}`, "not_found"},
		{"unknown group", "start_chat", fmt.Sprintf(`{"chat":{"users":%s,"access":{"group_ids":[999]}}}`, users(pat.ID)), "not_found"},
		{"group not served", "start_chat", fmt.Sprintf(`{"chat":{"users":%s,"access":{"group_ids":[%d]}}}`, users(pat.ID), support), "authorization"},
		{"customer already chatting", "start_chat", fmt.Sprintf(`{"chat":{"users":%s,"access":{"group_ids":[%d]}}}`, users(f.tom.ID), sales), "validation"},
		{"resume without id", "resume_chat", `{"chat":{}}`, "validation"},
		{"resume id wrong type", "resume_chat", `{"chat":{"id":1}}`, "validation"},
		{"resume unknown chat", "resume_chat", `{"chat":{"id":"NOPE"}}`, "not_found"},
		{"resume chat without threads", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q}}`, pat.ID), "not_found"},
		{"resume no access", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q}}`, f.una.ID), "not_found"},
		{"resume active chat", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q}}`, f.tom.ID), "validation"},
		{"resume naming another customer", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q,"users":%s}}`, f.vic.ID, users(pat.ID)), "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := f.k.Call(tc.action, json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			if st, b := f.h.web(t, "tok-carol", tc.action, tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
	for _, v := range []model.VisitorID{pat.ID, f.vic.ID} {
		if _, open, err := f.h.d.OpenConversation(ctx, v); err != nil || open {
			t.Fatalf("%s has an open conversation after refusals: %v %v", v, open, err)
		}
	}
}

func TestAgentStartResume(t *testing.T) {
	f := newFollowSetup(t)
	ctx := context.Background()
	pat, err := f.h.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: "Pat"}, model.Visitor{Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	sales := groupOf(t, f.h, "sales")
	tests := []struct {
		name, action, body string
		chat               model.VisitorID
		events             int // event_ids in the response
	}{
		{"start with a message", "start_chat", fmt.Sprintf(`{"chat":{"users":[{"id":%q,"type":"customer"},{"id":%q,"type":"agent"}],"access":{"group_ids":[%d]},"thread":{"events":[{"type":"message","text":"Hello Pat"}]}},"active":true}`, pat.ID, carol, sales), pat.ID, 1},
		{"resume a closed chat", "resume_chat", fmt.Sprintf(`{"chat":{"id":%q}}`, f.vic.ID), f.vic.ID, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.k.Call(tc.action, json.RawMessage(tc.body))
			if !r.Success {
				t.Fatalf("%s", r.Payload)
			}
			var out StartChatResponse
			mustUnmarshal(t, r.Payload, &out)
			if tc.action == "start_chat" && out.ChatID != string(tc.chat) {
				t.Fatalf("chat_id %q", out.ChatID)
			}
			if len(out.EventIDs) != tc.events || out.ThreadID == "" {
				t.Fatalf("response %s", r.Payload)
			}
			conv, err := f.h.st.Conversation(ctx, model.ConvID(out.ThreadID))
			if err != nil || conv.Visitor != tc.chat || conv.Agent != carol || conv.State != model.StateOpen || conv.Department != "sales" {
				t.Fatalf("stored thread %+v: %v", conv, err)
			}
			p := f.k.Push("incoming_chat")
			var ic IncomingChat
			mustUnmarshal(t, p.Payload, &ic)
			if p.RID() != r.RID() || ic.RequesterID != string(carol) || ic.Chat.ID != string(tc.chat) || ic.Chat.Thread.ID != out.ThreadID {
				t.Fatalf("incoming_chat %s rid %q", p.Payload, p.RID())
			}
			// The thread opens with carol joining; thread.events follow as
			// incoming_event, also answering the request.
			if evs := ic.Chat.Thread.Events; len(evs) != 1 || evs[0].Type != "system_message" {
				t.Fatalf("thread events %+v", evs)
			}
			for _, id := range out.EventIDs {
				p := f.k.Push("incoming_event")
				var ie IncomingEvent
				mustUnmarshal(t, p.Payload, &ie)
				if p.RID() != r.RID() || ie.Event.ID != id || ie.Event.Text != "Hello Pat" || ie.Event.AuthorID != string(carol) {
					t.Fatalf("incoming_event %s rid %q", p.Payload, p.RID())
				}
			}
		})
	}
}
