package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// followSetup: alice serves Tom's chat (sales, active), Una's (support,
// active) and Vic's (sales, closed); carol (sales only) is logged in too.
type followSetup struct {
	h                *harness
	a, k             *rtm
	tom, una, vic    model.Visitor
	tomConv, vicConv model.Conversation
}

func newFollowSetup(t *testing.T) *followSetup {
	h := newHarness(t, nil)
	f := &followSetup{h: h}
	f.a = h.dial(t, "/v3.5/agent/rtm/ws")
	f.a.login("tok-alice")
	f.tom, f.tomConv = h.startChat(t, "Tom", "sales")
	f.una, _ = h.startChat(t, "Una", "support")
	f.vic, f.vicConv = h.startChat(t, "Vic", "sales")
	if _, err := h.d.Close(context.Background(), f.vicConv.ID, model.Author{Kind: model.AuthorVisitor, ID: string(f.vic.ID)}, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []model.Conversation{f.tomConv, f.vicConv} {
		if c.Agent != alice {
			t.Fatalf("setup: %s not routed to alice", c.ID)
		}
	}
	f.k = h.dial(t, "/v3.5/agent/rtm/ws")
	f.k.login("tok-carol")
	return f
}

func TestFollowActionsRefused(t *testing.T) {
	f := newFollowSetup(t)
	tests := []struct {
		name, action, body, want string
	}{
		{"missing id", "follow_chat", `{}`, "validation"},
		{"id wrong type", "follow_chat", `{"id":5}`, "validation"},
		{"payload wrong type", "unfollow_chat", `{"id":["x"]}`, "validation"},
		{"unknown chat", "follow_chat", `{"id":"NOPE"}`, "not_found"},
		{"unknown chat unfollow", "unfollow_chat", `{"id":"NOPE"}`, "not_found"},
		{"no access", "follow_chat", fmt.Sprintf(`{"id":%q}`, f.una.ID), "not_found"},
		{"unfollow unseen", "unfollow_chat", fmt.Sprintf(`{"id":%q}`, f.tom.ID), "not_found"},
		{"inactive chat", "follow_chat", fmt.Sprintf(`{"id":%q}`, f.vic.ID), "chat_inactive"},
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
	c, err := f.h.st.Conversation(context.Background(), f.tomConv.ID)
	if err != nil || len(c.Followers) != 0 {
		t.Fatalf("followers after refusals: %v %q", err, c.Followers)
	}
}

func TestFollowPushesAndViews(t *testing.T) {
	f := newFollowSetup(t)
	ctx := context.Background()
	chat := string(f.tom.ID)
	body := json.RawMessage(fmt.Sprintf(`{"id":%q}`, chat))

	isFollowed := func(c *rtm) (bool, string) {
		r := c.Call("get_chat", map[string]any{"chat_id": chat})
		if !r.Success {
			return false, r.ErrType()
		}
		var ch wire.Chat
		mustUnmarshal(t, r.Payload, &ch)
		return ch.IsFollowed, ""
	}
	if _, e := isFollowed(f.k); e != "not_found" {
		t.Fatalf("carol sees Tom's chat before following: %q", e)
	}

	// carol follows: incoming_chat, tagged with her request, then the
	// thread's events as if she served it.
	r := f.k.Call("follow_chat", body)
	if !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("follow: %s", r.Payload)
	}
	in := f.k.Push("incoming_chat")
	var ic IncomingChat
	mustUnmarshal(t, in.Payload, &ic)
	if in.RID() != r.RID() || ic.Chat.ID != chat || !ic.Chat.IsFollowed || ic.RequesterID != string(carol) || len(ic.Chat.Thread.Events) == 0 {
		t.Fatalf("incoming_chat %s (rid %q)", in.Payload, in.RID())
	}
	if ok, e := isFollowed(f.k); !ok || e != "" {
		t.Fatalf("carol get_chat: followed %v err %q", ok, e)
	}
	// Following again changes nothing (and pushes nothing: the next
	// incoming_event push is the message posted below).
	if r := f.k.Call("follow_chat", body); !r.Success {
		t.Fatalf("follow again: %s", r.Payload)
	}
	if _, _, err := f.h.d.Post(ctx, desk.PostRequest{Conv: f.tomConv.ID,
		Author: model.Author{Kind: model.AuthorVisitor, ID: chat}, Draft: desk.Draft{Text: "anyone?"}}); err != nil {
		t.Fatal(err)
	}
	ev := f.k.Await(func(fr frame) bool {
		return fr.Type == "push" && (fr.Action == "incoming_event" || fr.Action == "incoming_chat")
	})
	var ie IncomingEvent
	mustUnmarshal(t, ev.Payload, &ie)
	if ev.Action != "incoming_event" || ie.ChatID != chat || ie.Event.Text != "anyone?" {
		t.Fatalf("carol got %s %s", ev.Action, ev.Payload)
	}
	// carol's chat list shows it followed.
	lr := f.k.Call("list_chats", nil)
	var lc ListChatsResponse
	mustUnmarshal(t, lr.Payload, &lc)
	if len(lc.ChatsSummary) != 1 || lc.ChatsSummary[0].ID != chat || !lc.ChatsSummary[0].IsFollowed {
		t.Fatalf("carol list_chats %s", lr.Payload)
	}

	// alice serves the chat: following it pushes no incoming_chat, and her
	// view says followed; carol's unfollow tells carol only.
	if r := f.a.Call("follow_chat", body); !r.Success {
		t.Fatalf("alice follow: %s", r.Payload)
	}
	if ok, _ := isFollowed(f.a); !ok {
		t.Fatal("alice get_chat: not followed")
	}
	r = f.k.Call("unfollow_chat", body)
	if !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("unfollow: %s", r.Payload)
	}
	un := f.k.Push("chat_unfollowed")
	var cu ChatUnfollowed
	mustUnmarshal(t, un.Payload, &cu)
	if cu.ChatID != chat || un.RID() != r.RID() {
		t.Fatalf("chat_unfollowed %s rid %q", un.Payload, un.RID())
	}
	if _, e := isFollowed(f.k); e != "not_found" {
		t.Fatalf("carol sees Tom's chat after unfollowing: %q", e)
	}
	// alice unfollows over the web: she still serves it.
	if st, b := f.h.web(t, "tok-alice", "unfollow_chat", string(body)); st != 200 || string(b) != "{}" {
		t.Fatalf("alice web unfollow: %d %s", st, b)
	}
	f.a.Push("chat_unfollowed")
	if ok, e := isFollowed(f.a); ok || e != "" {
		t.Fatalf("alice after unfollow: followed %v err %q", ok, e)
	}
	// alice got no incoming_chat for her own follow: her only
	// incoming_chat pushes are the three chats routed to her.
	n := 0
	for _, fr := range f.a.Backlog {
		if fr.Type == "push" && fr.Action == "incoming_chat" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("alice got %d incoming_chat pushes", n)
	}
}
