package customer

import (
	"fmt"
	"strings"
	"testing"

	"chatgate/adapters/livechat/wire"
)

// send_event with attach_to_last_thread (§2.5, §5.2): on an inactive chat
// the event joins the last thread, which stays inactive; on an active chat
// the flag is ignored; without it an inactive chat answers chat_inactive.
func TestSendEventAttachToLastThread(t *testing.T) {
	h := newHarness(t, nil)
	c, me, tok := h.customer(t)
	r := c.Call("start_chat", startPayload("hi"))
	if !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	var started StartChatResponse
	mustUnmarshal(t, r.Payload, &started)
	// Ignored while active.
	r = c.Call("send_event", map[string]any{"chat_id": string(me), "attach_to_last_thread": true, "event": map[string]any{"type": "message", "text": "active"}})
	if !r.Success || !strings.HasPrefix(string(r.Payload), `{"event_id":"`+started.ThreadID+`_`) {
		t.Fatalf("attach while active: %s", r.Payload)
	}
	if r := c.Call("deactivate_chat", map[string]any{"id": string(me)}); !r.Success {
		t.Fatalf("deactivate: %s", r.Payload)
	}
	c.Push("chat_deactivated")

	send := func(text, customID string) frame {
		return c.Call("send_event", map[string]any{"chat_id": string(me), "attach_to_last_thread": true,
			"event": map[string]any{"type": "message", "text": text, "custom_id": customID}})
	}
	rid := c.Send("send_event", map[string]any{"chat_id": string(me), "attach_to_last_thread": true,
		"event": map[string]any{"type": "message", "text": "after the end", "custom_id": "late-1"}})
	r = c.Response(rid)
	var out SendEventResponse
	mustUnmarshal(t, r.Payload, &out)
	if !r.Success || !strings.HasPrefix(out.EventID, started.ThreadID+"_") {
		t.Fatalf("attach: %s", r.Payload)
	}
	p := c.Await(func(f frame) bool {
		return f.Type == "push" && f.Action == "incoming_event" && strings.Contains(string(f.Payload), "after the end")
	})
	if p.RID() != rid {
		t.Fatalf("incoming_event rid %q, want %q", p.RID(), rid)
	}
	// A retry with the same custom_id is the same event.
	if r := send("after the end", "late-1"); !r.Success || !strings.Contains(string(r.Payload), out.EventID) {
		t.Fatalf("retry: %s", r.Payload)
	}
	// Over the Web API too; the thread stays inactive and holds both.
	st, b, _ := h.post(t, "/v3.5/customer/action/send_event?organization_id=org-1", tok,
		fmt.Sprintf(`{"chat_id":%q,"attach_to_last_thread":true,"event":{"type":"message","text":"web late"}}`, me), nil)
	if st != 200 {
		t.Fatalf("web attach: %d %s", st, b)
	}
	st, b, _ = h.post(t, "/v3.5/customer/action/get_chat?organization_id=org-1", tok, fmt.Sprintf(`{"chat_id":%q}`, me), nil)
	var ch wire.Chat
	mustUnmarshal(t, b, &ch)
	var texts []string
	for _, e := range ch.Thread.Events {
		if e.Type == "message" {
			texts = append(texts, e.Text)
		}
	}
	if st != 200 || ch.Thread.Active || ch.Thread.ID != started.ThreadID || strings.Join(texts, "|") != "hi|active|after the end|web late" {
		t.Fatalf("get_chat %d active %v texts %q", st, ch.Thread.Active, texts)
	}

	refused := []struct{ name, body, want string }{
		{"inactive without the flag", fmt.Sprintf(`{"chat_id":%q,"event":{"type":"message","text":"x"}}`, me), "chat_inactive"},
		{"flag wrong type", fmt.Sprintf(`{"chat_id":%q,"attach_to_last_thread":"yes","event":{"type":"message","text":"x"}}`, me), "validation"},
		{"another's chat", `{"chat_id":"NOPE","attach_to_last_thread":true,"event":{"type":"message","text":"x"}}`, "not_found"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			st, b, _ := h.post(t, "/v3.5/customer/action/send_event?organization_id=org-1", tok, tc.body, nil)
			if st < 400 || !containsType(b, tc.want) {
				t.Errorf("web: %d %s, want %s", st, b, tc.want)
			}
		})
	}
	// A customer without any chat has nothing to attach to.
	_, _, tok2 := h.customer(t)
	st, b, _ = h.post(t, "/v3.5/customer/action/send_event?organization_id=org-1", tok2,
		`{"chat_id":"x","attach_to_last_thread":true,"event":{"type":"message","text":"x"}}`, nil)
	if st != 404 {
		t.Fatalf("no chat: %d %s", st, b)
	}
}
