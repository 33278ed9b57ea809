//go:build unix

package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// crossVisitor is one visitor surface's client in
// TestClusterSurfacesAcrossNodes, talking to node A only.
type crossVisitor interface {
	// start opens the visitor's chat.
	start(t *testing.T)
	// ours reports whether an agent's incoming_chat payload is this
	// visitor's chat.
	ours(p map[string]any) bool
	send(t *testing.T, text string)
	// seeAgentText waits until the visitor has the agent message text.
	seeAgentText(t *testing.T, text string)
	// typeTo makes the visitor type and waits until ag is shown it; false
	// when the surface has no typing from visitors.
	typeTo(t *testing.T, ag *agent) bool
	// seeTyping waits until the visitor is shown an agent typing; false
	// when the surface shows no typing.
	seeTyping(t *testing.T) bool
	// seeTransfer waits until the visitor is told the chat went to the
	// agent (id, name).
	seeTransfer(t *testing.T, id, name string)
	// seeClosed waits until the visitor is told the chat ended.
	seeClosed(t *testing.T)
}

// v2Cross is a LiveChat v2 visitor (REST polls). v2 has no typing
// indicator in either direction (the protocol has no such event).
type v2Cross struct {
	v *visitor
}

func (c *v2Cross) start(t *testing.T) { c.v.t = t; c.v.start() }
func (c *v2Cross) ours(p map[string]any) bool {
	return customerName(p) == "Vera" // visitor.start's name
}
func (c *v2Cross) send(t *testing.T, text string)         { c.v.t = t; c.v.send(text) }
func (c *v2Cross) seeAgentText(t *testing.T, text string) { c.v.t = t; waitV2Text(t, c.v, text) }
func (c *v2Cross) typeTo(*testing.T, *agent) bool         { return false }
func (c *v2Cross) seeTyping(*testing.T) bool              { return false }
func (c *v2Cross) seeTransfer(t *testing.T, _, name string) {
	c.v.t = t
	// The new agent's agent_details (the newest one), as LiveChat v2
	// shows an assignment.
	waitFor(t, "agent_details of "+name, waitLimit, func() bool {
		var last any
		for _, e := range c.v.poll() {
			if a, _ := e["agent"].(map[string]any); e["type"] == "agent_details" {
				last = a["name"]
			}
		}
		return last == name
	})
}
func (c *v2Cross) seeClosed(t *testing.T) {
	c.v.t = t
	waitFor(t, "chat_closed", waitLimit, func() bool {
		evs := c.v.poll()
		return len(evs) > 0 && evs[len(evs)-1]["type"] == "chat_closed"
	})
}

// rcCross is a Rocket.Chat livechat widget: REST for its requests, DDP for
// what it is told.
type rcCross struct {
	client *http.Client
	addr   string
	w      *rcWriter
	d      *ddpConn
}

func (c *rcCross) start(t *testing.T) {
	if err := c.w.setup(c.client, "http://"+c.addr); err != nil {
		t.Fatal(err)
	}
	c.d = dialDDP(t, c.addr)
	c.d.sub("stream-room-messages", c.w.rid, c.w.token)
	c.d.sub("stream-notify-room", c.w.rid+"/typing", c.w.token)
}
func (c *rcCross) ours(p map[string]any) bool { return customerName(p) == c.w.name }
func (c *rcCross) send(t *testing.T, text string) {
	if _, err := rcJSON(c.client, "POST", "http://"+c.addr+"/api/v1/livechat/message", nil,
		map[string]any{"token": c.w.token, "rid": c.w.rid, "msg": text}); err != nil {
		t.Fatal(err)
	}
}
func (c *rcCross) roomMessage(t *testing.T, ok func(m map[string]any) bool) {
	c.d.t = t
	c.d.streamArgs("stream-room-messages", c.w.rid, func(args []any) bool {
		m, _ := args[0].(map[string]any)
		return ok(m)
	})
}
func (c *rcCross) seeAgentText(t *testing.T, text string) {
	c.roomMessage(t, func(m map[string]any) bool { return m["msg"] == text })
}
func (c *rcCross) typeTo(t *testing.T, ag *agent) bool {
	c.d.t = t
	c.d.send(map[string]any{"msg": "method", "id": "typing", "method": "stream-notify-room",
		"params": []any{c.w.rid + "/typing", "guest", true, map[string]any{"token": c.w.token}}})
	pushOf(ag, "incoming_typing_indicator", func(p map[string]any) bool {
		ti, _ := p["typing_indicator"].(map[string]any)
		return ti["is_typing"] == true
	})
	return true
}
func (c *rcCross) seeTyping(t *testing.T) bool {
	c.d.t = t
	c.d.streamArgs("stream-notify-room", c.w.rid+"/typing", func(args []any) bool { return len(args) >= 2 && args[1] == true })
	return true
}
func (c *rcCross) seeTransfer(t *testing.T, id, _ string) {
	// The room's livechat_transfer_history message naming the new agent.
	c.roomMessage(t, func(m map[string]any) bool {
		td, _ := m["transferData"].(map[string]any)
		to, _ := td["transferredTo"].(map[string]any)
		return m["t"] == "livechat_transfer_history" && to["_id"] == id
	})
}
func (c *rcCross) seeClosed(t *testing.T) {
	c.roomMessage(t, func(m map[string]any) bool { return m["t"] == "livechat-close" })
}

// customerCross is a LiveChat customer on the customer RTM (v3.5).
type customerCross struct {
	client *http.Client
	addr   string
	cust   *rtmConn
	chatID string
}

func (c *customerCross) start(t *testing.T) {
	tok, err := rcJSON(c.client, "POST", "http://"+c.addr+"/v2/customer/token", nil, map[string]any{"grant_type": "cookie"})
	if err != nil {
		t.Fatal(err)
	}
	c.cust = dialRTM(t, "ws://"+c.addr+"/v3.5/customer/rtm/ws?organization_id="+durabilityOrg)
	c.cust.call(nil, "login", map[string]any{"token": "Bearer " + tok["access_token"].(string)})
	var started struct {
		ChatID string `json:"chat_id"`
	}
	if err := json.Unmarshal(c.cust.call(nil, "start_chat", map[string]any{}), &started); err != nil {
		t.Fatal(err)
	}
	c.chatID = started.ChatID
}
func (c *customerCross) ours(p map[string]any) bool {
	chat, _ := p["chat"].(map[string]any)
	return chat["id"] == c.chatID
}
func (c *customerCross) push(t *testing.T, action string, ok func(p map[string]any) bool) {
	t.Helper()
	c.cust.t = t
	c.cust.next(nil, func(f visFrame) bool {
		if f.Type != "push" || f.Action != action {
			return false
		}
		var p map[string]any
		_ = json.Unmarshal(f.Payload, &p)
		return ok(p)
	})
}
func (c *customerCross) send(t *testing.T, text string) {
	c.cust.t = t
	c.cust.call(nil, "send_event", map[string]any{"chat_id": c.chatID, "event": map[string]any{"type": "message", "text": text}})
}
func (c *customerCross) seeAgentText(t *testing.T, text string) {
	c.push(t, "incoming_event", func(p map[string]any) bool { return eventText(p) == text })
}
func (c *customerCross) typeTo(t *testing.T, ag *agent) bool {
	// A customer's typing is its sneak peek (the customer API has no
	// typing indicator of its own).
	c.cust.t = t
	c.cust.call(nil, "send_sneak_peek", map[string]any{"chat_id": c.chatID, "sneak_peek_text": "I am wri"})
	pushOf(ag, "incoming_sneak_peek", func(p map[string]any) bool {
		sp, _ := p["sneak_peek"].(map[string]any)
		return sp["text"] == "I am wri"
	})
	return true
}
func (c *customerCross) seeTyping(t *testing.T) bool {
	c.push(t, "incoming_typing_indicator", func(p map[string]any) bool {
		ti, _ := p["typing_indicator"].(map[string]any)
		return ti["is_typing"] == true
	})
	return true
}
func (c *customerCross) seeTransfer(t *testing.T, id, _ string) {
	c.push(t, "chat_transferred", func(p map[string]any) bool {
		to, _ := p["transferred_to"].(map[string]any)
		ids, _ := to["agent_ids"].([]any)
		return p["chat_id"] == c.chatID && len(ids) == 1 && ids[0] == id
	})
}
func (c *customerCross) seeClosed(t *testing.T) {
	c.push(t, "chat_deactivated", func(p map[string]any) bool { return p["chat_id"] == c.chatID })
}

// customerName is the name of the customer in an incoming_chat payload.
func customerName(p map[string]any) string {
	chat, _ := p["chat"].(map[string]any)
	users, _ := chat["users"].([]any)
	for _, u := range users {
		if um, _ := u.(map[string]any); um["type"] == "customer" {
			s, _ := um["name"].(string)
			return s
		}
	}
	return ""
}

// routingStatuses is how node addr's router sees every agent
// (list_routing_statuses on its agent Web API).
func routingStatuses(t *testing.T, addr string) map[string]string {
	t.Helper()
	code, body := httpJSON(t, http.MethodPost, "http://"+addr+"/v3.5/agent/action/list_routing_statuses", map[string]any{},
		map[string]string{"Authorization": "Bearer " + agentToken})
	if code != http.StatusOK {
		t.Fatalf("list_routing_statuses: %d %s", code, body)
	}
	var list []struct {
		AgentID string `json:"agent_id"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("list_routing_statuses: %v: %s", err, body)
	}
	out := make(map[string]string, len(list))
	for _, s := range list {
		out[s.AgentID] = s.Status
	}
	return out
}

// TestClusterSurfacesAcrossNodes: a visitor on each surface (LiveChat v2
// REST, Rocket.Chat REST+DDP, LiveChat customer RTM) on node A, its agent
// (amy) on node B, a second agent (john, not accepting chats, so routing
// never picks him) on node C. For each surface, every step crosses nodes:
// messages both ways, typing both ways (v2 has none), amy transfers the
// chat to john (the visitor is told, john gets it and answers, the
// visitor's next message reaches john and not amy), john transfers it
// back, and amy closes it.
func TestClusterSurfacesAcrossNodes(t *testing.T) {
	store := clusterStore(t)
	// Neither amy nor john is an admin (an admin may see every chat, so
	// "the old agent gets nothing more" would not hold for one).
	cfg := clusterConfig(t, "  - id: john@example.com\n    name: John Roe\n    token: "+agentToken+"-john\n    password: "+agentPassword+"\n"+
		"  - id: amy@example.com\n    name: Amy Poe\n    token: "+agentToken+"-amy\n    password: "+agentPassword+"\n")
	a := startNode(t, "node-a", cfg, store)
	b := startNode(t, "node-b", cfg, store)
	c := startNode(t, "node-c", cfg, store)
	client := &http.Client{Timeout: 5 * time.Second}
	john := dialAgent(t, c.addr)
	john.call("login", map[string]any{"token": "Bearer " + agentToken + "-john"})
	john.call("set_routing_status", map[string]any{"status": "not_accepting_chats"})
	amy := dialAgent(t, b.addr)
	amy.call("login", map[string]any{"token": "Bearer " + agentToken + "-amy"})
	waitFor(t, "node A to see amy accepting and john not", waitLimit, func() bool {
		st := routingStatuses(t, a.addr)
		return st["amy@example.com"] == "accepting_chats" && st["john@example.com"] == "not_accepting_chats"
	})

	for _, tc := range []struct {
		name string
		v    crossVisitor
	}{
		{"v2", &v2Cross{v: &visitor{base: "http://" + a.addr, id: "cluster-cross-v2"}}},
		{"rocketchat", &rcCross{client: client, addr: a.addr, w: &rcWriter{idWriter: idWriter{name: "rc-cross"}, token: "cluster-rc-cross-token"}}},
		{"customer", &customerCross{client: client, addr: a.addr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			amy.t, john.t = t, t
			v := tc.v
			v.start(t)
			chatID := pushOf(amy, "incoming_chat", v.ours)["chat"].(map[string]any)["id"].(string)
			say := func(ag *agent, text string) {
				t.Helper()
				ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": text}})
			}
			heard := func(ag *agent, text string) {
				t.Helper()
				pushOf(ag, "incoming_event", func(p map[string]any) bool { return p["chat_id"] == chatID && eventText(p) == text })
			}

			// Messages both ways: visitor (A) -> amy (B) -> visitor.
			for _, m := range []string{tc.name + " one", tc.name + " two"} {
				v.send(t, m)
				heard(amy, m)
			}
			say(amy, tc.name+" reply")
			v.seeAgentText(t, tc.name+" reply")

			// Typing both ways.
			amy.call("send_typing_indicator", map[string]any{"chat_id": chatID, "is_typing": true})
			if !v.seeTyping(t) {
				t.Logf("%s: no agent typing on this surface", tc.name)
			}
			if !v.typeTo(t, amy) {
				t.Logf("%s: no visitor typing on this surface", tc.name)
			}

			// Amy (B) transfers to john (C): the visitor (A) is told,
			// amy is told, john gets the chat with its history.
			amy.call("transfer_chat", map[string]any{"id": chatID, "target": map[string]any{"type": "agent", "ids": []string{"john@example.com"}}})
			pushOf(amy, "chat_transferred", func(p map[string]any) bool { return p["chat_id"] == chatID })
			pushOf(john, "incoming_chat", func(p map[string]any) bool { return p["chat"].(map[string]any)["id"] == chatID })
			v.seeTransfer(t, "john@example.com", "John Roe")
			say(john, tc.name+" john here")
			v.seeAgentText(t, tc.name+" john here")
			after := tc.name + " after the transfer"
			v.send(t, after)
			heard(john, after)

			// John transfers it back. Node B delivers a conversation's
			// changes to amy in sequence order, so any push of the
			// message sent while the chat was john's would come before
			// her incoming_chat: none may.
			john.call("transfer_chat", map[string]any{"id": chatID, "target": map[string]any{"type": "agent", "ids": []string{"amy@example.com"}}})
			for {
				f := amy.nextWhere("a push", func(f map[string]any) bool { return f["type"] == "push" })
				p, _ := f["payload"].(map[string]any)
				if f["action"] == "incoming_event" && p["chat_id"] == chatID {
					t.Fatalf("amy got %q after the chat was transferred away from her", eventText(p))
				}
				if chat, _ := p["chat"].(map[string]any); f["action"] == "incoming_chat" && chat["id"] == chatID {
					break
				}
			}
			v.seeTransfer(t, "amy@example.com", "Amy Poe")
			say(amy, tc.name+" amy again")
			v.seeAgentText(t, tc.name+" amy again")

			// Amy closes on B; the visitor on A is told.
			amy.call("deactivate_chat", map[string]any{"id": chatID})
			v.seeClosed(t)
		})
	}

	// The operator view on B counts a chat started on A: deployment-wide
	// from the store (by_source_all), not in B's own count (by_source).
	t.Run("operator view counts every node", func(t *testing.T) {
		if _, err := v2Post(client, "http://"+a.addr, "cluster-ops-visitor", "start", url.Values{"welcome_message": {"hi"}}); err != nil {
			t.Fatal(err)
		}
		var ops struct {
			Conversations struct {
				BySource    map[string]int `json:"by_source"`
				BySourceAll map[string]int `json:"by_source_all"`
			} `json:"conversations"`
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+b.addr+"/console/api/ops", nil)
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&ops); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("ops view: %d %v", resp.StatusCode, err)
		}
		if c := ops.Conversations; c.BySourceAll["livechat.v2"] < 1 || c.BySource["livechat.v2"] != 0 {
			t.Fatalf("node B: by_source_all %v (want livechat.v2 >= 1), by_source %v (want no livechat.v2)", c.BySourceAll, c.BySource)
		}
	})
}
