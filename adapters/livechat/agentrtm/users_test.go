package agentrtm

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestUserToChatRefused(t *testing.T) {
	f := newFollowSetup(t) // alice: Tom (sales, active), Una (support, active), Vic (sales, closed)
	tom, vic := f.tom.ID, f.vic.ID
	tests := []struct {
		name, action, body, want string
		carol                    bool // asked by carol instead of alice
	}{
		{"missing chat_id", "add_user_to_chat", fmt.Sprintf(`{"user_id":%q,"user_type":"agent"}`, carol), "validation", false},
		{"missing user_id", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_type":"agent"}`, tom), "validation", false},
		{"missing user_type", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q}`, tom, carol), "validation", false},
		{"another customer", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer"}`, tom, f.una.ID), "validation", false},
		{"own customer agents-only", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer","visibility":"agents"}`, tom, tom), "validation", false},
		{"customer to an inactive chat", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer"}`, vic, vic), "chat_inactive", false},
		{"customer to an unseen chat", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer"}`, tom, tom), "not_found", true},
		{"remove a customer", "remove_user_from_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer"}`, tom, tom), "validation", false},
		{"user_id wrong type", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":5,"user_type":"agent"}`, tom), "validation", false},
		{"bad visibility", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent","visibility":"some"}`, tom, carol), "validation", false},
		{"unknown chat", "add_user_to_chat", fmt.Sprintf(`{"chat_id":"NOPE","user_id":%q,"user_type":"agent"}`, carol), "not_found", false},
		{"unknown agent", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":"nobody","user_type":"agent"}`, tom), "not_found", false},
		{"inactive chat", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent"}`, vic, carol), "chat_inactive", false},
		{"no access", "add_user_to_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent"}`, tom, carol), "not_found", true},
		{"remove a non-member", "remove_user_from_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent"}`, tom, carol), "not_found", false},
		{"remove the serving agent", "remove_user_from_chat", fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent"}`, tom, alice), "validation", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, tok := f.a, "tok-alice"
			if tc.carol {
				c, tok = f.k, "tok-carol"
			}
			if r := c.Call(tc.action, json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			if st, b := f.h.web(t, tok, tc.action, tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
}

func TestUserToChat(t *testing.T) {
	f := newFollowSetup(t)
	chat, thread := string(f.tom.ID), string(f.tomConv.ID)
	body := fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent","visibility":"all"}`, chat, carol)

	r := f.a.Call("add_user_to_chat", json.RawMessage(body))
	if !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("add: %s", r.Payload)
	}
	// carol gets the chat, then both are told she was added.
	in := f.k.Push("incoming_chat")
	var ic IncomingChat
	mustUnmarshal(t, in.Payload, &ic)
	if ic.Chat.ID != chat || ic.RequesterID != string(alice) {
		t.Fatalf("incoming_chat %s", in.Payload)
	}
	for i, c := range []*rtm{f.a, f.k} {
		p := c.Push("user_added_to_chat")
		var got UserAddedToChat
		mustUnmarshal(t, p.Payload, &got)
		if got.ChatID != chat || got.ThreadID != thread || got.User.ID != string(carol) || got.RequesterID != string(alice) ||
			(i == 0) != (p.RID() == r.RID()) {
			t.Fatalf("conn %d: %s rid %q", i, p.Payload, p.RID())
		}
	}
	// carol may now write in it, and alice sees her message.
	if r := f.k.Call("send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": "carol here"}}); !r.Success {
		t.Fatalf("member send_event: %s", r.Payload)
	}
	ev := f.a.Await(func(fr frame) bool {
		var ie IncomingEvent
		return fr.Type == "push" && fr.Action == "incoming_event" && json.Unmarshal(fr.Payload, &ie) == nil && ie.ChatID == chat
	})
	var ie IncomingEvent
	mustUnmarshal(t, ev.Payload, &ie)
	if ie.Event.Text != "carol here" || ie.Event.AuthorID != string(carol) {
		t.Fatalf("alice got %s", ev.Payload)
	}
	// Removed over the web: both are told; carol loses the chat.
	if st, b := f.h.web(t, "tok-alice", "remove_user_from_chat", body); st != 200 || string(b) != "{}" {
		t.Fatalf("remove: %d %s", st, b)
	}
	for i, c := range []*rtm{f.a, f.k} {
		p := c.Push("user_removed_from_chat")
		var got UserRemovedFromChat
		mustUnmarshal(t, p.Payload, &got)
		if got != (UserRemovedFromChat{ChatID: chat, ThreadID: thread, UserID: string(carol), Reason: "manual", RequesterID: string(alice)}) {
			t.Fatalf("conn %d: %s", i, p.Payload)
		}
	}
	if r := f.k.Call("send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": "x"}}); r.ErrType() != "not_found" {
		t.Fatalf("removed member send_event: %s", r.Payload)
	}
}

// add_user_to_chat of the chat's own customer succeeds and changes
// nothing (see addUserToChat).
func TestAddOwnCustomerToChat(t *testing.T) {
	f := newFollowSetup(t)
	tom := string(f.tom.ID)
	body := fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"customer"}`, tom, tom)
	if r := f.a.Call("add_user_to_chat", json.RawMessage(body)); !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("rtm: %s", r.Payload)
	}
	if st, b := f.h.web(t, "tok-alice", "add_user_to_chat", body); st != 200 || string(b) != "{}" {
		t.Fatalf("web: %d %s", st, b)
	}
	conv, err := f.h.st.Conversation(t.Context(), f.tomConv.ID)
	if err != nil || len(conv.Members) != 0 {
		t.Fatalf("members %v: %v", conv.Members, err)
	}
}
