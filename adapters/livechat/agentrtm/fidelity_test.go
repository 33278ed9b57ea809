package agentrtm

import (
	"context"
	"encoding/json"
	"testing"

	"chatgate/core/model"
)

// TestEventUpdatedReachesAgents (issue 12): a visitor's edit and deletion,
// made on any visitor surface (they all go through the desk), reach the
// serving agent's RTM socket as event_updated, as they reach customers and
// webhooks.
func TestEventUpdatedReachesAgents(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, tom, conv := h.aliceServesTom(t)
	by := model.Author{Kind: model.AuthorVisitor, ID: string(tom.ID), Name: "Tom"}
	if _, err := h.d.EditEvent(ctx, conv.ID, 1, by, "hello, edited", ""); err != nil {
		t.Fatal(err)
	}
	var up IncomingEvent
	mustUnmarshal(t, a.Push("event_updated").Payload, &up)
	if up.ChatID != string(tom.ID) || up.ThreadID != string(conv.ID) || up.Event.ID != string(conv.ID)+"_1" || up.Event.Text != "hello, edited" {
		t.Fatalf("event_updated after edit: %+v", up)
	}
	if _, err := h.d.DeleteEvent(ctx, conv.ID, 1, by, ""); err != nil {
		t.Fatal(err)
	}
	up = IncomingEvent{}
	mustUnmarshal(t, a.Push("event_updated").Payload, &up)
	if up.Event.ID != string(conv.ID)+"_1" || up.Event.Text != "" {
		t.Fatalf("event_updated after delete: %+v", up)
	}
}

// TestSendEventModel: every event type of the seed an agent may send is
// accepted and comes back, as sent, in the incoming_event push and
// get_chat; visibility and recipients narrow it, and an unknown or
// disagreeing value is refused, never widened.
func TestSendEventModel(t *testing.T) {
	h := newHarness(t, nil)
	a, tom, _ := h.aliceServesTom(t)
	chat := string(tom.ID)
	form := json.RawMessage(`{"type":"filled_form","form_id":"f1","fields":[` +
		`{"type":"text","name":"name","label":"Your name:","required":true,"value":"John Doe"},` +
		`{"type":"title","name":"Chat window title","label":"Let's talk!"},` +
		`{"type":"radio","id":"2","label":"Purpose","answer":{"id":"0","label":"Support"}}]}`)
	rich := json.RawMessage(`{"type":"rich_message","template_id":"cards","elements":[{"title":"Plan","buttons":[{"text":"Buy","postback_id":"buy","user_ids":[]}]}]}`)
	for _, tc := range []struct {
		name    string
		event   json.RawMessage
		errType string // "" = accepted
		check   func(t *testing.T, e map[string]any)
	}{
		{name: "message", event: json.RawMessage(`{"type":"message","text":"hi"}`), check: func(t *testing.T, e map[string]any) {
			if e["text"] != "hi" || e["visibility"] != "all" {
				t.Errorf("message: %v", e)
			}
		}},
		{name: "custom", event: json.RawMessage(`{"type":"custom","content":{"k":[1,2]}}`), check: func(t *testing.T, e map[string]any) {
			if b, _ := json.Marshal(e["content"]); string(b) != `{"k":[1,2]}` {
				t.Errorf("custom: %v", e)
			}
		}},
		{name: "system_message", event: json.RawMessage(`{"type":"system_message","system_message_type":"rating.chat_rated","text":"rated"}`), check: func(t *testing.T, e map[string]any) {
			if e["system_message_type"] != "rating.chat_rated" || e["text"] != "rated" {
				t.Errorf("system_message: %v", e)
			}
		}},
		{name: "filled_form", event: form, check: func(t *testing.T, e map[string]any) {
			fields, _ := e["fields"].([]any)
			f0, _ := fields[0].(map[string]any)
			f2, _ := fields[2].(map[string]any)
			if e["form_id"] != "f1" || len(fields) != 3 || f0["value"] != "John Doe" || f0["name"] != "name" || f0["required"] != true {
				t.Errorf("filled_form: %v", e)
			}
			if ans, _ := f2["answer"].(map[string]any); ans["label"] != "Support" {
				t.Errorf("filled_form answer: %v", f2)
			}
		}},
		{name: "rich_message", event: rich, check: func(t *testing.T, e map[string]any) {
			els, _ := e["elements"].([]any)
			if e["template_id"] != "cards" || len(els) != 1 {
				t.Errorf("rich_message: %v", e)
			}
		}},
		{name: "recipients agents", event: json.RawMessage(`{"type":"message","text":"note","recipients":"agents"}`), check: func(t *testing.T, e map[string]any) {
			if e["visibility"] != "agents" {
				t.Errorf("recipients agents stored as %v", e["visibility"])
			}
		}},
		{name: "both agents", event: json.RawMessage(`{"type":"message","text":"note","recipients":"agents","visibility":"agents"}`), check: func(t *testing.T, e map[string]any) {
			if e["visibility"] != "agents" {
				t.Errorf("visibility = %v", e["visibility"])
			}
		}},
		{name: "recipients unknown", event: json.RawMessage(`{"type":"message","text":"x","recipients":"supervisors"}`), errType: "validation"},
		{name: "visibility unknown", event: json.RawMessage(`{"type":"message","text":"x","visibility":"none"}`), errType: "validation"},
		{name: "disagreeing", event: json.RawMessage(`{"type":"message","text":"x","visibility":"all","recipients":"agents"}`), errType: "validation"},
		{name: "form without fields", event: json.RawMessage(`{"type":"filled_form","form_id":"f","fields":[]}`), errType: "validation"},
		{name: "form field without type", event: json.RawMessage(`{"type":"filled_form","fields":[{"label":"x","value":"y"}]}`), errType: "validation"},
		{name: "rich bad template", event: json.RawMessage(`{"type":"rich_message","template_id":"carousel","elements":[{}]}`), errType: "validation"},
		{name: "rich null element", event: json.RawMessage(`{"type":"rich_message","template_id":"cards","elements":[null]}`), errType: "validation"},
		{name: "rich null button", event: json.RawMessage(`{"type":"rich_message","template_id":"cards","elements":[{"buttons":[null]}]}`), errType: "validation"},
		{name: "rich no elements", event: json.RawMessage(`{"type":"rich_message","template_id":"cards","elements":[]}`), errType: "validation"},
		{name: "file not uploaded", event: json.RawMessage(`{"type":"file","url":"https://example.org/x.png"}`), errType: "validation"},
		{name: "annotation", event: json.RawMessage(`{"type":"annotation","text":"x"}`), errType: "validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := a.Call("send_event", map[string]any{"chat_id": chat, "event": tc.event})
			if tc.errType != "" {
				if f.Success || f.ErrType() != tc.errType {
					t.Fatalf("want %s error, got %s", tc.errType, f.Payload)
				}
				return
			}
			if !f.Success {
				t.Fatalf("send_event: %s", f.Payload)
			}
			var resp SendEventResponse
			mustUnmarshal(t, f.Payload, &resp)
			var push struct {
				Event map[string]any `json:"event"`
			}
			mustUnmarshal(t, a.Await(func(p frame) bool { return p.Action == "incoming_event" && p.Type == "push" }).Payload, &push)
			if push.Event["id"] != resp.EventID {
				t.Fatalf("push %v for event %s", push.Event, resp.EventID)
			}
			var want map[string]any
			mustUnmarshal(t, tc.event, &want)
			if push.Event["type"] != want["type"] {
				t.Fatalf("type %v, sent %v", push.Event["type"], want["type"])
			}
			tc.check(t, push.Event)
		})
	}
}

// TestTypingRecipientsAgents: an agent's typing indicator for agents only,
// named by the seed's recipients, is not published (the customer would get
// it); an unknown value is refused.
func TestTypingRecipientsAgents(t *testing.T) {
	h := newHarness(t, nil)
	a, tom, conv := h.aliceServesTom(t)
	sub := h.d.Bus().SubscribeConv(conv.ID, 16)
	defer sub.Close()
	if f := a.Call("send_typing_indicator", map[string]any{"chat_id": string(tom.ID), "is_typing": true, "recipients": "agents"}); !f.Success {
		t.Fatalf("typing: %s", f.Payload)
	}
	if f := a.Call("send_typing_indicator", map[string]any{"chat_id": string(tom.ID), "is_typing": true, "recipients": "everyone"}); f.Success || f.ErrType() != "validation" {
		t.Fatalf("unknown recipients: %s", f.Payload)
	}
	if f := a.Call("send_typing_indicator", map[string]any{"chat_id": string(tom.ID), "is_typing": false}); !f.Success {
		t.Fatalf("typing: %s", f.Payload)
	}
	// The first indicator published is the last one (is_typing false).
	n := <-sub.C()
	if n.Typing == nil || n.Typing.On {
		t.Fatalf("first published notice: %+v", n.Typing)
	}
}

// TestStartChatHiddenUserRefused: start_chat cannot add an agent hidden
// from the customer, so chat.users[].visibility (or recipients) "agents"
// is refused instead of adding the agent visibly.
func TestStartChatHiddenUserRefused(t *testing.T) {
	h := newHarness(t, nil)
	a, tom, conv := h.aliceServesTom(t)
	if _, err := h.d.Close(context.Background(), conv.ID, model.Author{Kind: model.AuthorAgent, ID: string(alice)}, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, u := range []map[string]any{
		{"id": string(bob), "type": "agent", "visibility": "agents"},
		{"id": string(bob), "type": "agent", "recipients": "agents"},
		{"id": string(bob), "type": "agent", "recipients": "nobody"},
	} {
		f := a.Call("start_chat", map[string]any{"chat": map[string]any{"users": []any{
			map[string]any{"id": string(tom.ID), "type": "customer"}, u}}})
		if f.Success || f.ErrType() != "validation" {
			t.Fatalf("start_chat with %v: %s", u, f.Payload)
		}
	}
}
