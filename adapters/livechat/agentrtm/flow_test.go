package agentrtm

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/routing"
)

var createdAtRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func findUser(users []wire.User, typ string) *wire.User {
	for i := range users {
		if users[i].Type == typ {
			return &users[i]
		}
	}
	return nil
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.dial(t, "/v3.5/agent/rtm/ws?organization_id=org-1")
	lr := a.login("tok-alice")
	if lr.License.ID != "1520" || lr.License.OrganizationID != "org-1" || lr.MyProfile.ID != string(alice) ||
		lr.MyProfile.Email != string(alice) || lr.MyProfile.Type != "agent" ||
		lr.MyProfile.RoutingStatus != string(routing.Accepting) || len(lr.ChatsSummary) != 0 {
		t.Fatalf("login response: %+v", lr)
	}
	// A second connection of the same agent: it sees pushes without the
	// first connection's request ids.
	a2 := h.dial(t, "/v3.5/agent/rtm/ws")
	a2.login("tok-alice")

	// A visitor starts a chat; routing gives it to alice.
	tom, conv := h.startChat(t, "Tom", "")
	var ic IncomingChat
	mustUnmarshal(t, a.Push("incoming_chat").Payload, &ic)
	if ic.Chat.ID != string(tom.ID) || ic.Chat.Thread.ID != string(conv.ID) || !ic.Chat.Thread.Active ||
		ic.RequesterID != string(tom.ID) {
		t.Fatalf("incoming_chat: %+v", ic)
	}
	if cu := findUser(ic.Chat.Users, "customer"); cu == nil || cu.Name != "Tom" || !cu.Present {
		t.Fatalf("customer user: %+v", ic.Chat.Users)
	}
	if au := findUser(ic.Chat.Users, "agent"); au == nil || au.ID != string(alice) {
		t.Fatalf("agent user: %+v", ic.Chat.Users)
	}
	evs := ic.Chat.Thread.Events
	if len(evs) != 2 || evs[0].Type != "message" || evs[0].Text != "hello from Tom" || evs[0].AuthorID != string(tom.ID) ||
		evs[1].Type != "system_message" || evs[1].SystemMessageType != "routing.assigned" || evs[1].AuthorID != "" {
		t.Fatalf("incoming_chat events: %+v", evs)
	}
	for _, e := range evs {
		if !createdAtRE.MatchString(e.CreatedAt) {
			t.Fatalf("created_at %q", e.CreatedAt)
		}
	}
	a2.Push("incoming_chat")

	// The agent answers: the response, then the request_id-tagged push,
	// in that order.
	if len(a.Backlog) != 0 {
		t.Fatalf("unexpected frames: %+v", a.Backlog)
	}
	rid := a.Send("send_event", map[string]any{"chat_id": tom.ID,
		"event": map[string]any{"type": "message", "text": "Hi Tom", "custom_id": "c-1"}})
	resp := a.Recv()
	if resp.Type != "response" || resp.RID() != rid || !resp.Success {
		t.Fatalf("first frame after send_event: %+v %s", resp, resp.Payload)
	}
	var se SendEventResponse
	mustUnmarshal(t, resp.Payload, &se)
	if want := wire.EventID(conv.ID, 3); se.EventID != want {
		t.Fatalf("event_id = %q, want %q", se.EventID, want)
	}
	pf := a.Recv()
	if pf.Type != "push" || pf.Action != "incoming_event" || pf.RID() != rid || pf.Version != "3.5" {
		t.Fatalf("incoming_event push request_id %q version %q, want %q 3.5", pf.RID(), pf.Version, rid)
	}
	var ie IncomingEvent
	mustUnmarshal(t, pf.Payload, &ie)
	if ie.ChatID != string(tom.ID) || ie.ThreadID != string(conv.ID) || ie.Event.ID != se.EventID ||
		ie.Event.Text != "Hi Tom" || ie.Event.CustomID != "c-1" || ie.Event.AuthorID != string(alice) {
		t.Fatalf("incoming_event: %+v", ie)
	}
	if other := a2.Push("incoming_event"); other.RequestID != nil {
		t.Fatalf("other connection's push carries request_id %q", other.RID())
	}

	// list_chats and get_chat show it.
	var lc ListChatsResponse
	mustUnmarshal(t, a.Call("list_chats", nil).Payload, &lc)
	if lc.FoundChats != 1 || len(lc.ChatsSummary) != 1 || lc.ChatsSummary[0].ID != string(tom.ID) ||
		!lc.ChatsSummary[0].LastThreadSummary.Active || lc.ChatsSummary[0].LastEventPerType["message"].Event.Text != "Hi Tom" {
		t.Fatalf("list_chats: %+v", lc)
	}
	var chat wire.Chat
	mustUnmarshal(t, a.Call("get_chat", map[string]any{"chat_id": tom.ID}).Payload, &chat)
	if chat.ID != string(tom.ID) || chat.Thread.ID != string(conv.ID) || len(chat.Thread.Events) != 3 ||
		chat.Thread.Access.GroupIDs[0] != 0 {
		t.Fatalf("get_chat: %+v", chat)
	}

	// The visitor writes: alice gets it, without a request_id.
	if _, _, err := h.d.Post(ctx, desk.PostRequest{Conv: conv.ID,
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(tom.ID)},
		Draft:  desk.Draft{Kind: model.KindMessage, Text: "thanks"}}); err != nil {
		t.Fatal(err)
	}
	vf := a.Push("incoming_event")
	mustUnmarshal(t, vf.Payload, &ie)
	if vf.RequestID != nil || ie.Event.Text != "thanks" || ie.Event.AuthorID != string(tom.ID) {
		t.Fatalf("visitor message push: %s", vf.Payload)
	}

	// The agent closes the chat: response, close message, chat_deactivated.
	if len(a.Backlog) != 0 {
		t.Fatalf("unexpected frames: %+v", a.Backlog)
	}
	rid = a.Send("deactivate_chat", map[string]any{"id": tom.ID})
	if r := a.Recv(); r.Type != "response" || r.RID() != rid || !r.Success || string(r.Payload) != "{}" {
		t.Fatalf("deactivate_chat: %+v %s", r, r.Payload)
	}
	sys := a.Recv()
	mustUnmarshal(t, sys.Payload, &ie)
	if ie.Event.Type != "system_message" || ie.Event.SystemMessageType != "manual_archived_agent" || sys.RID() != rid {
		t.Fatalf("close system message: %s (request_id %q)", sys.Payload, sys.RID())
	}
	dc := a.Recv()
	if dc.Action != "chat_deactivated" {
		t.Fatalf("frame after the close message: %+v", dc)
	}
	var cd ChatDeactivated
	mustUnmarshal(t, dc.Payload, &cd)
	if cd.ChatID != string(tom.ID) || cd.ThreadID != string(conv.ID) || cd.UserID != string(alice) || dc.RID() != rid {
		t.Fatalf("chat_deactivated: %+v request_id %q", cd, dc.RID())
	}
	a2.Push("chat_deactivated")

	mustUnmarshal(t, a.Call("get_chat", map[string]any{"chat_id": tom.ID}).Payload, &chat)
	if chat.Thread.Active {
		t.Fatalf("thread still active after deactivate_chat")
	}
	if f := a.Call("send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "message", "text": "x"}}); f.ErrType() != "chat_inactive" {
		t.Fatalf("send_event after close: %s", f.Payload)
	}
	// Inactive chats stay listed; a new login's summary lists active ones.
	mustUnmarshal(t, a.Call("list_chats", nil).Payload, &lc)
	if lc.FoundChats != 1 || lc.ChatsSummary[0].LastThreadSummary.Active {
		t.Fatalf("list_chats after close: %+v", lc)
	}
	a3 := h.dial(t, "/v3.4/agent/rtm/ws")
	if lr := a3.login("tok-alice"); len(lr.ChatsSummary) != 0 {
		t.Fatalf("login summary lists inactive chats: %+v", lr.ChatsSummary)
	}
}

func TestRoutingStatus(t *testing.T) {
	h := newHarness(t, nil)
	a1 := h.dial(t, "/v3.5/agent/rtm/ws")
	a1.login("tok-alice")
	a2 := h.dial(t, "/v3.6/agent/rtm/ws")
	a2.login("tok-alice")
	cc := h.dial(t, "/v3.5/agent/rtm/ws")
	cc.login("tok-carol") // serves only "sales"

	rid := a1.Send("set_routing_status", map[string]any{"status": "not_accepting_chats"})
	if r := a1.Recv(); r.Type != "response" || r.RID() != rid || !r.Success {
		t.Fatalf("set_routing_status: %+v %s", r, r.Payload)
	}
	own := a1.Recv()
	var rs struct{ AgentID, Status string }
	mustUnmarshal(t, own.Payload, &rs)
	if own.RID() != rid || rs.Status != "not_accepting_chats" {
		t.Fatalf("routing_status_set: %s request_id %q", own.Payload, own.RID())
	}
	if other := a2.Push("routing_status_set"); other.RequestID != nil || other.Version != "3.6" {
		t.Fatalf("other connection: request_id %q version %q", other.RID(), other.Version)
	}
	if st := h.d.Router().Status(alice); st != routing.NotAccepting {
		t.Fatalf("router status %s", st)
	}

	// Nobody accepts support chats now: it queues, and every connection
	// of an agent serving its department is offered it.
	vic, conv := h.startChat(t, "Vic", "support")
	if conv.State != model.StateQueued {
		t.Fatalf("conversation %s (agent %s), want queued", conv.State, conv.Agent)
	}
	for _, c := range []*rtm{a1, a2} {
		var ic IncomingChat
		mustUnmarshal(t, c.Push("incoming_chat").Payload, &ic)
		// Queue.Position is not checked: desk.Start publishes before it
		// enqueues, so the position may not be known yet (see report).
		if ic.Chat.Thread.Queue == nil || ic.Chat.Thread.Queue.Position > 1 || findUser(ic.Chat.Users, "agent") != nil {
			t.Fatalf("queued incoming_chat: %+v", ic.Chat.Thread)
		}
	}
	// carol does not serve the department: the chat is invisible to her.
	var lc ListChatsResponse
	mustUnmarshal(t, cc.Call("list_chats", nil).Payload, &lc)
	if lc.FoundChats != 0 {
		t.Fatalf("carol sees %d chats", lc.FoundChats)
	}
	if f := cc.Call("get_chat", map[string]any{"chat_id": vic.ID}); f.ErrType() != "not_found" {
		t.Fatalf("carol get_chat: %s", f.Payload)
	}

	// Answering a queued chat takes it.
	rid = a1.Send("send_event", map[string]any{"chat_id": vic.ID, "event": map[string]any{"type": "message", "text": "on it"}})
	if r := a1.Response(rid); !r.Success {
		t.Fatalf("send_event on queued chat: %s", r.Payload)
	}
	took := a1.Push("incoming_chat")
	var ic IncomingChat
	mustUnmarshal(t, took.Payload, &ic)
	if took.RID() != rid || ic.RequesterID != string(alice) || findUser(ic.Chat.Users, "agent") == nil {
		t.Fatalf("incoming_chat on take: %s", took.Payload)
	}
	if f := a1.Push("incoming_event"); f.RID() != rid {
		t.Fatalf("incoming_event on take: request_id %q", f.RID())
	}

	// Back to accepting: the next queued chat is assigned by routing.
	wes, _ := h.startChat(t, "Wes", "support")
	a2.Push("incoming_chat") // offered while queued
	rid = a2.Send("set_routing_status", map[string]any{"status": "accepting_chats", "agent_id": alice})
	if r := a2.Response(rid); !r.Success {
		t.Fatalf("set_routing_status: %s", r.Payload)
	}
	a1.Await(func(f frame) bool {
		if f.Type != "push" || f.Action != "incoming_chat" {
			return false
		}
		var ic IncomingChat
		mustUnmarshal(t, f.Payload, &ic)
		return ic.Chat.ID == string(wes.ID) && findUser(ic.Chat.Users, "agent") != nil
	})
	if lr := h.dial(t, "/v3.5/agent/rtm/ws").login("tok-alice"); lr.MyProfile.RoutingStatus != "accepting_chats" || len(lr.ChatsSummary) != 2 {
		t.Fatalf("login after: status %s, %d chats", lr.MyProfile.RoutingStatus, len(lr.ChatsSummary))
	}
}

func TestListChatsPaging(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	var want []string
	for _, n := range []string{"P1", "P2", "P3", "P4", "P5"} {
		v, _ := h.startChat(t, n, "")
		want = append(want, string(v.ID))
	}
	var got []string
	var lc ListChatsResponse
	mustUnmarshal(t, a.Call("list_chats", map[string]any{"limit": 2, "sort_order": "asc"}).Payload, &lc)
	pages := 1
	for {
		if lc.FoundChats != 5 {
			t.Fatalf("found_chats %d", lc.FoundChats)
		}
		for _, s := range lc.ChatsSummary {
			got = append(got, s.ID)
		}
		if lc.NextPageID == "" {
			break
		}
		next := lc.NextPageID
		lc = ListChatsResponse{}
		mustUnmarshal(t, a.Call("list_chats", map[string]any{"page_id": next}).Payload, &lc)
		pages++
		if lc.PreviousPageID == "" {
			t.Fatalf("page %d has no previous_page_id", pages)
		}
	}
	if pages != 3 || len(got) != 5 {
		t.Fatalf("pages %d, chats %v", pages, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	// Back one page from the last.
	prev := ListChatsResponse{}
	mustUnmarshal(t, a.Call("list_chats", map[string]any{"page_id": lc.PreviousPageID}).Payload, &prev)
	if len(prev.ChatsSummary) != 2 || prev.ChatsSummary[0].ID != want[2] || prev.ChatsSummary[1].ID != want[3] {
		t.Fatalf("previous page: %+v", prev.ChatsSummary)
	}
}

func TestLoginTimeout(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LoginTimeout = 50 * time.Millisecond })
	c := h.dial(t, "/v3.5/agent/rtm/ws")
	var ce *websocket.CloseError
	if err := c.CloseErr(); !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("close = %v, want 1008", err)
	}
}

// A logged-in client that neither sends frames nor answers control pings
// is told connection_timeout and closed.
func TestPingTimeout(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PingTimeout = 300 * time.Millisecond })
	c := h.dialWith(t, "/v3.5/agent/rtm/ws", func(ws *websocket.Conn) {
		ws.SetPingHandler(func(string) error { return nil })
	})
	c.login("tok-alice")
	var p struct{ Reason string }
	mustUnmarshal(t, c.Push("agent_disconnected").Payload, &p)
	if p.Reason != "connection_timeout" {
		t.Fatalf("reason %q", p.Reason)
	}
	if err := c.CloseErr(); err == nil {
		t.Fatal("socket not closed")
	}
	// The session's end is recorded around the close frame; stopping the
	// surface waits for it.
	h.stop()
	if st := h.d.Router().Status(alice); st != routing.Offline {
		t.Fatalf("alice still %s", st)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	pre := h.dial(t, "/v3.5/agent/rtm/ws") // never logs in
	if r := pre.Call("ping", nil); !r.Success {
		t.Fatalf("ping: %s", r.Payload)
	}
	h.stop()
	var p struct{ Reason string }
	mustUnmarshal(t, a.Push("agent_disconnected").Payload, &p)
	if p.Reason != "agent_disconnected_by_server" {
		t.Fatalf("reason %q", p.Reason)
	}
	var ce *websocket.CloseError
	if err := a.CloseErr(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("close = %v, want 1001", err)
	}
	pre.CloseErr()
	if n := h.connections(); n != 0 {
		t.Fatalf("%d connections after Run returned", n)
	}
	if st := h.d.Router().Status(alice); st != routing.Offline {
		t.Fatalf("alice %s after shutdown", st)
	}
}

func TestWrongOrganization(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t, "/v3.5/agent/rtm/ws?organization_id=someone-else")
	var p struct{ Reason string }
	mustUnmarshal(t, c.Push("agent_disconnected").Payload, &p)
	if p.Reason != "license_not_found" {
		t.Fatalf("reason %q", p.Reason)
	}
	c.CloseErr()
}

func TestPushFilter(t *testing.T) {
	h := newHarness(t, nil)
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	f := a.Call("login", map[string]any{"token": "Bearer tok-alice", "pushes": map[string]any{"3.5": []string{"incoming_event"}}})
	if !f.Success {
		t.Fatalf("login: %s", f.Payload)
	}
	tom, _ := h.startChat(t, "Tom", "")
	rid := a.Send("send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "message", "text": "hi"}})
	// The incoming_chat push (not subscribed) never comes; the
	// incoming_event does, after or before the response.
	got := a.Await(func(f frame) bool { return f.Type == "push" && f.Action == "incoming_event" && f.RID() == rid })
	if got.Action != "incoming_event" {
		t.Fatal("no incoming_event")
	}
	for _, f := range a.Backlog {
		if f.Action == "incoming_chat" {
			t.Fatalf("unsubscribed push delivered: %s", f.Payload)
		}
	}
}
