package agentrtm

import (
	"context"
	"encoding/json"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

// TestThreadChangesCustomer: when a thread is given to another customer
// (Rocket.Chat's livechat/room.visitor, desk.ChangeVisitor), the agent
// serving it is told that the old customer's chat lost it
// (chat_deactivated) and that the new customer's chat has it
// (incoming_chat, users: the new customer), and get_chat shows it there.
func TestThreadChangesCustomer(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	// Ida chatted before (closed); Tom's thread is open.
	ida, _ := h.startChat(t, "Ida", "")
	a.Push("incoming_chat")
	if _, err := h.d.Close(ctx, mustOpen(t, h, ida.ID), model.System, "", ""); err != nil {
		t.Fatal(err)
	}
	a.Push("chat_deactivated")
	tom, conv := h.startChat(t, "Tom", "")
	a.Push("incoming_chat")

	if _, err := h.d.ChangeVisitor(ctx, conv.ID, tom.ID, ida.ID, model.System); err != nil {
		t.Fatal(err)
	}
	var off ChatDeactivated
	mustUnmarshal(t, a.Push("chat_deactivated").Payload, &off)
	if off.ChatID != string(tom.ID) || off.ThreadID != string(conv.ID) {
		t.Errorf("chat_deactivated %+v", off)
	}
	var in IncomingChat
	mustUnmarshal(t, a.Push("incoming_chat").Payload, &in)
	if in.Chat.ID != string(ida.ID) || in.Chat.Thread.ID != string(conv.ID) || !hasCustomer(in.Chat.Users, ida.ID) || hasCustomer(in.Chat.Users, tom.ID) {
		t.Errorf("incoming_chat %+v", in.Chat)
	}
	r := a.Call("get_chat", map[string]any{"chat_id": string(ida.ID), "thread_id": string(conv.ID)})
	var got struct {
		ID     string      `json:"id"`
		Users  []wire.User `json:"users"`
		Thread struct {
			ID string `json:"id"`
		} `json:"thread"`
	}
	if !r.Success || json.Unmarshal(r.Payload, &got) != nil || got.Thread.ID != string(conv.ID) || !hasCustomer(got.Users, ida.ID) {
		t.Errorf("get_chat of the new customer: %s", r.Payload)
	}
}

func mustOpen(t *testing.T, h *harness, v model.VisitorID) model.ConvID {
	t.Helper()
	c, ok, err := h.d.OpenConversation(context.Background(), v)
	if err != nil || !ok {
		t.Fatalf("open conversation of %s: %v %v", v, ok, err)
	}
	return c.ID
}

func hasCustomer(users []wire.User, id model.VisitorID) bool {
	for _, u := range users {
		if u.Type == "customer" && u.ID == string(id) {
			return true
		}
	}
	return false
}
