package agentrtm

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"chatgate/adapters/livechat/wire"
)

// userIDs are the ids of a rendered users list, in order.
func userIDs(us []wire.User) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

// Added agents are chat users: get_chat (RTM and Web API), list_chats and
// the added agent's incoming_chat list them in users and thread.user_ids
// (§2.4 "Chat"), whatever the visibility they were added with (agents see
// every member); removing them takes them out again.
func TestAddedAgentsAreChatUsers(t *testing.T) {
	f := newFollowSetup(t)
	chat := string(f.tom.ID)
	body := fmt.Sprintf(`{"chat_id":%q,"user_id":%q,"user_type":"agent","visibility":"agents"}`, chat, carol)
	if r := f.a.Call("add_user_to_chat", json.RawMessage(body)); !r.Success {
		t.Fatalf("add: %s", r.Payload)
	}
	var ic IncomingChat
	mustUnmarshal(t, f.k.Push("incoming_chat").Payload, &ic)
	withCarol := []string{chat, string(alice), string(carol)}
	without := []string{chat, string(alice)}
	if got := userIDs(ic.Chat.Users); !slices.Equal(got, withCarol) {
		t.Fatalf("incoming_chat users %q, want %q", got, withCarol)
	}

	check := func(t *testing.T, want []string) {
		t.Helper()
		tests := []struct {
			name string
			get  func() []byte
		}{
			{"rtm get_chat", func() []byte {
				r := f.a.Call("get_chat", map[string]any{"chat_id": chat})
				if !r.Success {
					t.Fatalf("get_chat: %s", r.Payload)
				}
				return r.Payload
			}},
			{"web get_chat", func() []byte {
				st, b := f.h.web(t, "tok-alice", "get_chat", fmt.Sprintf(`{"chat_id":%q}`, chat))
				if st != 200 {
					t.Fatalf("web get_chat: %d %s", st, b)
				}
				return b
			}},
		}
		for _, tc := range tests {
			var ch wire.Chat
			mustUnmarshal(t, tc.get(), &ch)
			if got := userIDs(ch.Users); !slices.Equal(got, want) {
				t.Errorf("%s users %q, want %q", tc.name, got, want)
			}
			if !slices.Equal(ch.Thread.UserIDs, want) {
				t.Errorf("%s thread.user_ids %q, want %q", tc.name, ch.Thread.UserIDs, want)
			}
		}
		r := f.a.Call("list_chats", map[string]any{})
		var lc ListChatsResponse
		mustUnmarshal(t, r.Payload, &lc)
		found := false
		for _, s := range lc.ChatsSummary {
			if s.ID == chat {
				found = true
				if got := userIDs(s.Users); !slices.Equal(got, want) {
					t.Errorf("list_chats users %q, want %q", got, want)
				}
				if !slices.Equal(s.LastThreadSummary.UserIDs, want) {
					t.Errorf("list_chats last_thread_summary.user_ids %q, want %q", s.LastThreadSummary.UserIDs, want)
				}
			}
		}
		if !found {
			t.Errorf("list_chats misses %s: %s", chat, r.Payload)
		}
	}
	t.Run("added", func(t *testing.T) { check(t, withCarol) })
	if r := f.a.Call("remove_user_from_chat", json.RawMessage(body)); !r.Success {
		t.Fatalf("remove: %s", r.Payload)
	}
	f.a.Push("user_removed_from_chat")
	t.Run("removed", func(t *testing.T) { check(t, without) })
}
