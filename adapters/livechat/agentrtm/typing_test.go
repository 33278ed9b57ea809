package agentrtm

import (
	"context"
	"testing"
	"time"

	"chatgate/core/hub"
	"chatgate/core/model"
)

// TestSendTypingIndicator: the agent's indicator reaches the conversation's
// subscribers (the customer-facing surfaces) as a desk typing notice; bad
// requests are answered in the protocol's error types.
func TestSendTypingIndicator(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, tom, conv := h.aliceServesTom(t)
	una, unaConv := h.startChat(t, "Una", "")
	a.Push("incoming_chat")
	if _, err := h.d.Close(ctx, unaConv.ID, model.Author{Kind: model.AuthorVisitor, ID: string(una.ID)}, "", ""); err != nil {
		t.Fatal(err)
	}
	b := h.dial(t, "/v3.5/agent/rtm/ws")
	b.login("tok-bob")

	sub := h.d.Bus().SubscribeConv(conv.ID, 16)
	defer sub.Close()
	next := func() (hub.Notice, bool) {
		select {
		case n := <-sub.C():
			return *n, true
		case <-time.After(300 * time.Millisecond):
			return hub.Notice{}, false
		}
	}

	for _, on := range []bool{true, false} {
		for _, vis := range []string{"all", ""} {
			f := a.Call("send_typing_indicator", map[string]any{"chat_id": tom.ID, "visibility": vis, "is_typing": on})
			if !f.Success || string(f.Payload) != "{}" {
				t.Fatalf("send_typing_indicator(%v, %q): %s", on, vis, f.Payload)
			}
			n, ok := next()
			if !ok || n.Typing == nil || n.Typing.On != on || n.Typing.Author.Kind != model.AuthorAgent ||
				n.Typing.Author.ID != string(alice) || n.Conv.ID != conv.ID || len(n.Events) != 0 {
				t.Fatalf("notice after send_typing_indicator(%v, %q): %+v (got %v)", on, vis, n, ok)
			}
		}
	}
	// Agents-only: accepted, not published towards the customer.
	if f := a.Call("send_typing_indicator", map[string]any{"chat_id": tom.ID, "visibility": "agents", "is_typing": true}); !f.Success {
		t.Fatalf("visibility agents: %s", f.Payload)
	}
	if n, ok := next(); ok {
		t.Fatalf("agents-only indicator published: %+v", n)
	}
	// The agent's own indicator is not pushed back to agents.
	a.Call("ping", nil)
	for _, f := range a.Backlog {
		if f.Action == "incoming_typing_indicator" {
			t.Fatalf("agent's own indicator pushed to it: %s", f.Payload)
		}
	}

	cases := []struct {
		name    string
		conn    *rtm
		payload map[string]any
		want    string
	}{
		{"chat_id missing", a, map[string]any{"is_typing": true}, "validation"},
		{"chat_id wrong type", a, map[string]any{"chat_id": 5, "is_typing": true}, "validation"},
		{"is_typing missing", a, map[string]any{"chat_id": tom.ID}, "validation"},
		{"is_typing wrong type", a, map[string]any{"chat_id": tom.ID, "is_typing": "yes"}, "validation"},
		{"bad visibility", a, map[string]any{"chat_id": tom.ID, "is_typing": true, "visibility": "everyone"}, "validation"},
		{"unknown chat", a, map[string]any{"chat_id": "NOPE", "is_typing": true}, "not_found"},
		{"another agent's chat", b, map[string]any{"chat_id": tom.ID, "is_typing": true}, "not_found"},
		{"closed chat", a, map[string]any{"chat_id": una.ID, "is_typing": true}, "chat_inactive"},
	}
	for _, tc := range cases {
		f := tc.conn.Call("send_typing_indicator", tc.payload)
		if f.Success || f.ErrType() != tc.want {
			t.Errorf("%s: success=%v %s, want %s", tc.name, f.Success, f.Payload, tc.want)
		}
	}
	if n, ok := next(); ok {
		t.Fatalf("a refused request published: %+v", n)
	}

	// Before login: authentication.
	fresh := h.dial(t, "/v3.5/agent/rtm/ws")
	if f := fresh.Call("send_typing_indicator", map[string]any{"chat_id": tom.ID, "is_typing": true}); f.Success || f.ErrType() != "authentication" {
		t.Fatalf("before login: %s", f.Payload)
	}
}
