package customer

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// mark_events_as_seen stores the customer's marker (get_chat shows it as
// the customer's events_seen_up_to, over RTM and Web API); the markers of
// agents it is shown reach it as events_marked_as_seen, those of
// agents-only members never do.
func TestCustomerSeenMarkers(t *testing.T) {
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
	for _, m := range []struct {
		agent model.AgentID
		vis   model.Visibility
	}{{bob, model.VisibleAll}, {carol, model.VisibleAgents}} {
		if _, err := h.d.SetMember(ctx, conv, m.agent, true, m.vis, model.System, ""); err != nil {
			t.Fatal(err)
		}
	}
	mine := time.Date(2099, 3, 4, 5, 6, 7, 0, time.UTC) // after every event
	mark := func(at time.Time) {
		t.Helper()
		r := c.Call("mark_events_as_seen", map[string]any{"chat_id": string(me), "seen_up_to": at.Format(time.RFC3339Nano)})
		if !r.Success {
			t.Fatalf("mark: %s", r.Payload)
		}
		p := c.Push("events_marked_as_seen")
		var got EventsMarkedAsSeen
		mustUnmarshal(t, p.Payload, &got)
		if got.UserID != string(me) || got.SeenUpTo != wire.Time(at) || p.RID() != r.RID() {
			t.Fatalf("own push %s rid %q", p.Payload, p.RID())
		}
	}
	mark(mine)

	bobSeen := mine.Add(time.Second)
	if _, err := h.d.MarkSeen(ctx, me, model.Author{Kind: model.AuthorAgent, ID: string(bob)}, bobSeen, ""); err != nil {
		t.Fatal(err)
	}
	p := c.Push("events_marked_as_seen")
	var got EventsMarkedAsSeen
	mustUnmarshal(t, p.Payload, &got)
	if got != (EventsMarkedAsSeen{UserID: string(bob), ChatID: string(me), SeenUpTo: wire.Time(bobSeen)}) || p.RID() != "" {
		t.Fatalf("bob's push %s rid %q", p.Payload, p.RID())
	}
	// carol's marker is not pushed: the next one is the customer's own.
	if _, err := h.d.MarkSeen(ctx, me, model.Author{Kind: model.AuthorAgent, ID: string(carol)}, bobSeen, ""); err != nil {
		t.Fatal(err)
	}
	mine = mine.Add(time.Minute)
	mark(mine)

	st, b, _ := h.post(t, "/v3.5/customer/action/get_chat?organization_id=org-1", tok, fmt.Sprintf(`{"chat_id":%q}`, me), nil)
	if st != 200 {
		t.Fatalf("get_chat: %d %s", st, b)
	}
	var ch wire.Chat
	mustUnmarshal(t, b, &ch)
	want := map[string]string{string(me): wire.Time(mine), string(bob): wire.Time(bobSeen)}
	for _, u := range ch.Users {
		w, ok := want[u.ID]
		if !ok && u.ID != string(alice) {
			t.Errorf("unexpected user %s", u.ID)
		}
		if ok && u.EventsSeenUpTo != w {
			t.Errorf("%s events_seen_up_to %q, want %q", u.ID, u.EventsSeenUpTo, w)
		}
		delete(want, u.ID)
	}
	if len(want) != 0 {
		t.Errorf("users missing: %v", want)
	}
}

func TestCustomerMarkSeenRefused(t *testing.T) {
	h := newHarness(t, nil)
	_, me, tok := h.customer(t)
	other, _ := h.startChat(t, "Other", "")
	tests := []struct{ name, body, want string }{
		{"no chat yet", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"2026-01-01T00:00:00Z"}`, me), "not_found"},
		{"other's chat", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"2026-01-01T00:00:00Z"}`, other.ID), "not_found"},
		{"bad date", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"soon"}`, me), "validation"},
		{"missing chat_id", `{"seen_up_to":"2026-01-01T00:00:00Z"}`, "validation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b, _ := h.post(t, "/v3.5/customer/action/mark_events_as_seen?organization_id=org-1", tok, tc.body, nil)
			if st < 400 || !containsType(b, tc.want) {
				t.Errorf("web: %d %s, want %s", st, b, tc.want)
			}
		})
	}
}

func containsType(b []byte, typ string) bool {
	var e struct {
		Error struct{ Type string } `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error.Type == typ
}

// login's chats[].has_unread_events follows the customer's seen marker:
// an agent's reply after it is unread until marked as seen.
func TestLoginHasUnreadEvents(t *testing.T) {
	h := newHarness(t, nil)
	c, me, tok := h.customer(t)
	if r := c.Call("start_chat", startPayload("hi")); !r.Success {
		t.Fatalf("start: %s", r.Payload)
	}
	unread := func() bool {
		t.Helper()
		c2 := h.dial(t, rtmPath)
		lr := c2.login(tok)
		if len(lr.Chats) != 1 || lr.Chats[0].ChatID != string(me) {
			t.Fatalf("login chats %+v", lr.Chats)
		}
		return lr.Chats[0].HasUnreadEvents
	}
	if unread() {
		t.Fatal("unread after the customer's own message")
	}
	conv, _, err := h.d.OpenConversation(context.Background(), me)
	if err != nil {
		t.Fatal(err)
	}
	reply, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: conv.ID, Author: model.Author{Kind: model.AuthorAgent, ID: string(alice)},
		Draft: desk.Draft{Text: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if !unread() {
		t.Fatal("the agent's reply is not unread")
	}
	if r := c.Call("mark_events_as_seen", map[string]any{"chat_id": string(me), "seen_up_to": reply.At.Format(time.RFC3339Nano)}); !r.Success {
		t.Fatalf("mark: %s", r.Payload)
	}
	if unread() {
		t.Fatal("unread after marking the reply seen")
	}
}
