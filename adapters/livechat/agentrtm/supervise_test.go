package agentrtm

import (
	"path/filepath"
	"slices"
	"testing"

	"chatgate/core/model"
)

// superviseSetup: alice and carol serve sales; sue supervises sales, ada
// administers support only; ned is a plain agent of sales. Only alice
// accepts chats, so Tom's sales chat and Una's support chat are hers.
type superviseSetup struct {
	h        *harness
	alice    *rtm
	tom, una model.Visitor
}

const (
	sue = model.AgentID("sue@example.com")
	ada = model.AgentID("ada@example.com")
	ned = model.AgentID("ned@example.com")
)

func newSuperviseSetup(t *testing.T) *superviseSetup {
	agents := []model.Agent{
		{ID: alice, Name: "Alice"},
		{ID: sue, Name: "Sue", Departments: []model.DeptID{"sales"}, Supervisor: true},
		{ID: ada, Name: "Ada", Departments: []model.DeptID{"support"}, Admin: true},
		{ID: ned, Name: "Ned", Departments: []model.DeptID{"sales"}},
	}
	co := newCoreWith(t, filepath.Join(t.TempDir(), "chatgate.db"), 200, agents)
	for _, a := range agents[1:] {
		co.d.Router().SetAccepting(a.ID, false)
	}
	tokens := map[string]model.AgentID{"tok-alice": alice, "tok-sue": sue, "tok-ada": ada, "tok-ned": ned}
	h := newHarnessOn(t, co, func(c *Config) {
		c.Authenticate = func(tok string) (model.AgentID, bool) { id, ok := tokens[tok]; return id, ok }
	})
	f := &superviseSetup{h: h}
	f.alice = h.dial(t, "/v3.5/agent/rtm/ws")
	f.alice.login("tok-alice") // present, so that routing gives her the chats
	var tc, uc model.Conversation
	f.tom, tc = h.startChat(t, "Tom", "sales")
	f.una, uc = h.startChat(t, "Una", "support")
	if tc.Agent != alice || uc.Agent != alice {
		t.Fatalf("setup: chats routed to %s and %s, want alice", tc.Agent, uc.Agent)
	}
	return f
}

func listedChats(t *testing.T, c *rtm) []string {
	t.Helper()
	r := c.Call("list_chats", map[string]any{})
	if !r.Success {
		t.Fatalf("list_chats: %s", r.Payload)
	}
	var out ListChatsResponse
	mustUnmarshal(t, r.Payload, &out)
	var ids []string
	for _, s := range out.ChatsSummary {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestSupervisorSeesOthersChats: a supervisor (and an admin) sees the
// other agents' chats of its departments in login, list_chats and get_chat,
// gets their events pushed, and may take one over; a plain agent of the
// same department sees none of them (not_found, as a chat that does not
// exist), nor does a supervisor of another department.
func TestSupervisorSeesOthersChats(t *testing.T) {
	f := newSuperviseSetup(t)
	tom, una := string(f.tom.ID), string(f.una.ID)
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	cases := []struct {
		name, token string
		want        []string
	}{
		{"supervisor of sales", "tok-sue", []string{tom}},
		{"admin of support", "tok-ada", []string{una}},
		{"plain agent of sales", "tok-ned", nil},
		{"the serving agent", "tok-alice", sorted(tom, una)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.h.dial(t, "/v3.5/agent/rtm/ws")
			login := c.login(tc.token)
			var atLogin []string
			for _, s := range login.ChatsSummary {
				atLogin = append(atLogin, s.ID)
			}
			slices.Sort(atLogin)
			if !slices.Equal(atLogin, tc.want) {
				t.Errorf("login chats_summary %v, want %v", atLogin, tc.want)
			}
			if got := listedChats(t, c); !slices.Equal(got, tc.want) {
				t.Errorf("list_chats %v, want %v", got, tc.want)
			}
			for _, id := range []string{tom, una} {
				r := c.Call("get_chat", map[string]any{"chat_id": id})
				if visible := slices.Contains(tc.want, id); r.Success != visible || (!visible && r.ErrType() != "not_found") {
					t.Errorf("get_chat %s: success %v (%s), want visible %v", id, r.Success, r.ErrType(), visible)
				}
			}
		})
	}

	// The supervisor is told of the chat's new events; the plain agent is not.
	s := f.h.dial(t, "/v3.5/agent/rtm/ws")
	s.login("tok-sue")
	n := f.h.dial(t, "/v3.5/agent/rtm/ws")
	n.login("tok-ned")
	a := f.alice
	if r := a.Call("send_event", map[string]any{"chat_id": tom, "event": map[string]any{"type": "message", "text": "alice answers"}}); !r.Success {
		t.Fatalf("send_event: %s", r.Payload)
	}
	var ev IncomingEvent
	mustUnmarshal(t, s.Push("incoming_event").Payload, &ev)
	if ev.ChatID != tom {
		t.Fatalf("supervisor's incoming_event for %s", ev.ChatID)
	}

	// Watching is not serving: the supervisor may not write into the chat
	// until it takes it over.
	for action, p := range map[string]map[string]any{
		"send_event":      {"chat_id": tom, "event": map[string]any{"type": "message", "text": "sup"}},
		"deactivate_chat": {"id": tom},
	} {
		if r := s.Call(action, p); r.Success || r.ErrType() != "authorization" {
			t.Fatalf("supervisor's %s before taking over: %s", action, r.Payload)
		}
	}
	// The plain agent cannot take the chat over; the supervisor can.
	take := map[string]any{"id": tom, "target": map[string]any{"type": "agent", "ids": []string{string(ned)}}}
	if r := n.Call("transfer_chat", take); r.Success || r.ErrType() != "not_found" {
		t.Fatalf("plain agent's transfer_chat: %s", r.Payload)
	}
	take["target"] = map[string]any{"type": "agent", "ids": []string{string(sue)}}
	if r := s.Call("transfer_chat", take); !r.Success {
		t.Fatalf("supervisor's take-over: %s", r.Payload)
	}
	conv, err := f.h.d.Store().Conversation(t.Context(), f.lastConv(t, tom))
	if err != nil || conv.Agent != sue {
		t.Fatalf("after take-over the chat is served by %q (%v), want sue", conv.Agent, err)
	}
	if got := listedChats(t, n); len(got) != 0 {
		t.Errorf("plain agent lists %v after the take-over", got)
	}
}

func (f *superviseSetup) lastConv(t *testing.T, chat string) model.ConvID {
	t.Helper()
	ids, err := f.h.d.Store().VisitorConversations(t.Context(), model.VisitorID(chat))
	if err != nil || len(ids) == 0 {
		t.Fatalf("threads of %s: %v", chat, err)
	}
	return ids[len(ids)-1]
}
