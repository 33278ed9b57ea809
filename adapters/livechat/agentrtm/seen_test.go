package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

func TestMarkEventsAsSeenRefused(t *testing.T) {
	f := newFollowSetup(t) // Tom's chat is alice's; carol cannot see it
	tom := string(f.tom.ID)
	tests := []struct {
		name, body, want string
		carol            bool
	}{
		{"missing chat_id", `{"seen_up_to":"2026-01-01T00:00:00Z"}`, "validation", false},
		{"missing seen_up_to", fmt.Sprintf(`{"chat_id":%q}`, tom), "validation", false},
		{"bad date", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"yesterday"}`, tom), "validation", false},
		{"chat_id wrong type", `{"chat_id":5,"seen_up_to":"2026-01-01T00:00:00Z"}`, "validation", false},
		{"unknown chat", `{"chat_id":"NOPE","seen_up_to":"2026-01-01T00:00:00Z"}`, "not_found", false},
		{"chat not seen", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"2026-01-01T00:00:00Z"}`, tom), "not_found", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, tok := f.a, "tok-alice"
			if tc.carol {
				c, tok = f.k, "tok-carol"
			}
			if r := c.Call("mark_events_as_seen", json.RawMessage(tc.body)); r.Success || r.ErrType() != tc.want {
				t.Errorf("rtm: success %v type %q, want %q: %s", r.Success, r.ErrType(), tc.want, r.Payload)
			}
			if st, b := f.h.web(t, tok, "mark_events_as_seen", tc.body); st < 400 || webErrType(t, b) != tc.want {
				t.Errorf("web: %d %s, want %q", st, b, tc.want)
			}
		})
	}
}

// Seen markers are stored with the chat: after a restart get_chat and
// list_chats still show each user's events_seen_up_to (§2.4 "Users"), the
// agent's from mark_events_as_seen over RTM and the customer's from the
// desk. Markers only move forward.
func TestSeenMarkersSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatgate.db")
	// Far ahead of the events' times, so that the stored markers, not the
	// users' own latest events, are what get_chat shows.
	agentSeen := time.Date(2099, 3, 4, 5, 6, 7, 123456000, time.UTC)
	customerSeen := agentSeen.Add(time.Minute)
	var chat string

	t.Run("mark", func(t *testing.T) {
		h := newHarnessOn(t, newCoreAt(t, path, 200), nil)
		a := h.dial(t, "/v3.5/agent/rtm/ws")
		a.login("tok-alice")
		tom, conv := h.startChat(t, "Tom", "sales")
		if conv.Agent != alice {
			t.Fatalf("setup: not routed to alice")
		}
		chat = string(tom.ID)
		r := a.Call("mark_events_as_seen", map[string]any{"chat_id": chat, "seen_up_to": agentSeen.Format(time.RFC3339Nano)})
		if !r.Success || string(r.Payload) != "{}" {
			t.Fatalf("mark: %s", r.Payload)
		}
		p := a.Push("events_marked_as_seen")
		var got EventsMarkedAsSeen
		mustUnmarshal(t, p.Payload, &got)
		if want := (EventsMarkedAsSeen{UserID: string(alice), ChatID: chat, SeenUpTo: wire.Time(agentSeen)}); got != want || p.RID() != r.RID() {
			t.Fatalf("push %s rid %q, want %+v rid %q", p.Payload, p.RID(), want, r.RID())
		}
		// An earlier marker over the Web API keeps the later one.
		if st, b := h.web(t, "tok-alice", "mark_events_as_seen", fmt.Sprintf(`{"chat_id":%q,"seen_up_to":"2020-01-01T00:00:00Z"}`, chat)); st != 200 {
			t.Fatalf("web mark: %d %s", st, b)
		}
		// The customer marks too; alice is told.
		if _, err := h.d.MarkSeen(context.Background(), tom.ID, model.Author{Kind: model.AuthorVisitor, ID: chat}, customerSeen, ""); err != nil {
			t.Fatal(err)
		}
		a.Await(func(fr frame) bool {
			var e EventsMarkedAsSeen
			return fr.Type == "push" && fr.Action == "events_marked_as_seen" && json.Unmarshal(fr.Payload, &e) == nil &&
				e.UserID == chat && e.SeenUpTo == wire.Time(customerSeen)
		})
	})

	t.Run("after restart", func(t *testing.T) {
		h := newHarnessOn(t, newCoreAt(t, path, 200), nil)
		a := h.dial(t, "/v3.5/agent/rtm/ws")
		a.login("tok-alice")
		want := map[string]string{chat: wire.Time(customerSeen), string(alice): wire.Time(agentSeen)}
		check := func(name string, users []wire.User) {
			t.Helper()
			if len(users) != len(want) {
				t.Errorf("%s: users %+v", name, users)
			}
			for _, u := range users {
				if u.EventsSeenUpTo != want[u.ID] {
					t.Errorf("%s: %s events_seen_up_to %q, want %q", name, u.ID, u.EventsSeenUpTo, want[u.ID])
				}
			}
		}
		r := a.Call("get_chat", map[string]any{"chat_id": chat})
		var ch wire.Chat
		mustUnmarshal(t, r.Payload, &ch)
		check("get_chat", ch.Users)
		st, b := h.web(t, "tok-alice", "get_chat", fmt.Sprintf(`{"chat_id":%q}`, chat))
		if st != 200 {
			t.Fatalf("web get_chat: %d %s", st, b)
		}
		mustUnmarshal(t, b, &ch)
		check("web get_chat", ch.Users)
		r = a.Call("list_chats", map[string]any{})
		var lc ListChatsResponse
		mustUnmarshal(t, r.Payload, &lc)
		if len(lc.ChatsSummary) != 1 {
			t.Fatalf("list_chats: %s", r.Payload)
		}
		check("list_chats", lc.ChatsSummary[0].Users)
	})
}
