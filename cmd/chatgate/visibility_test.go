package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// secret marks the agents-only events of TestAgentsOnlyEventsNeverReachVisitors.
const secret = "AGENTS-ONLY-NOTE"

const visOrg = "org-visibility-test"

// rtmConn is a bare RTM client (agent or customer) collecting frames.
type rtmConn struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan json.RawMessage
	n      int
}

func dialRTM(t *testing.T, url string) *rtmConn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &rtmConn{t: t, conn: conn, frames: make(chan json.RawMessage, 512)}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			c.frames <- b
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

type visFrame struct {
	Type, Action, RequestID string
	Success                 bool
	Payload                 json.RawMessage
}

// next returns the next frame satisfying ok; every frame read on the way
// (and the match) goes to seen.
func (c *rtmConn) next(seen func([]byte), ok func(visFrame) bool) visFrame {
	c.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case b, open := <-c.frames:
			if !open {
				c.t.Fatal("socket closed")
			}
			if seen != nil {
				seen(b)
			}
			var f struct {
				Type      string          `json:"type"`
				Action    string          `json:"action"`
				RequestID string          `json:"request_id"`
				Success   bool            `json:"success"`
				Payload   json.RawMessage `json:"payload"`
			}
			if json.Unmarshal(b, &f) == nil {
				fr := visFrame{Type: f.Type, Action: f.Action, RequestID: f.RequestID, Success: f.Success, Payload: f.Payload}
				if ok(fr) {
					return fr
				}
			}
		case <-timeout:
			c.t.Fatal("no matching frame")
		}
	}
}

func (c *rtmConn) call(seen func([]byte), action string, payload any) json.RawMessage {
	c.t.Helper()
	c.n++
	rid := fmt.Sprintf("v%d", c.n)
	if err := c.conn.WriteJSON(map[string]any{"request_id": rid, "action": action, "payload": payload}); err != nil {
		c.t.Fatal(err)
	}
	f := c.next(seen, func(f visFrame) bool { return f.Type == "response" && f.RequestID == rid })
	if !f.Success {
		c.t.Fatalf("%s: %s", action, f.Payload)
	}
	return f.Payload
}

// httpJSON sends a JSON request and returns status and body.
func httpJSON(t *testing.T, method, url string, body any, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// agentsOnly are the agents-only events of
// TestAgentsOnlyEventsNeverReachVisitors: every event type an agent may
// send, narrowed by visibility, by the seed's recipients, or by both.
var agentsOnly = []map[string]any{
	{"type": "message", "text": secret, "visibility": "agents"},
	{"type": "message", "text": secret, "recipients": "agents"},
	{"type": "message", "text": secret, "recipients": "agents", "visibility": "agents"},
	{"type": "custom", "content": map[string]any{"note": secret}, "recipients": "agents"},
	{"type": "system_message", "system_message_type": "note", "text": secret, "recipients": "agents"},
	{"type": "filled_form", "form_id": "f", "fields": []any{map[string]any{"type": "text", "name": "n", "label": "Note", "value": secret}}, "recipients": "agents"},
	{"type": "rich_message", "template_id": "cards", "elements": []any{map[string]any{"title": secret}}, "recipients": "agents"},
}

// refusedNarrowing are narrowings chatgate cannot honour: each is refused
// (validation), never stored as visible to all.
var refusedNarrowing = []map[string]any{
	{"type": "message", "text": secret, "recipients": "staff"},
	{"type": "message", "text": secret, "visibility": "all", "recipients": "agents"},
	{"type": "message", "text": secret, "visibility": "agents", "recipients": "all"},
}

// TestAgentsOnlyEventsNeverReachVisitors: an agent writes agents-only
// events (agentsOnly) and then an ordinary one into the chats of a
// LiveChat v2 visitor, a Rocket.Chat widget visitor and a LiveChat v3
// customer. No visitor-side surface shows the first, on any path (v3 RTM
// pushes, get_chat, list_threads, list_chats over RTM and the Web API; v2
// polls; the Rocket.Chat visitor history and its DDP message stream),
// while each shows the second; the agent surfaces (agent Web API
// get_chat, Rocket.Chat agent chat.syncMessages) do show the first.
// Narrowings that cannot be honoured are refused.
func TestAgentsOnlyEventsNeverReachVisitors(t *testing.T) {
	cfg := "license:\n  id: \"" + testLicence + "\"\n  organization_id: " + visOrg + "\nlivechat:\n  v2:\n    poll_timeout: 1h\n" +
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: " + agentToken + "\n    password: " + agentPassword + "\n"
	cfgPath := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfgPath, filepath.Join(t.TempDir(), "vis.db"))
	base, ws := "http://"+g.addr, "ws://"+g.addr
	agentHdr := map[string]string{"Authorization": "Bearer " + agentToken}
	leaks := func(where string, b []byte) {
		t.Helper()
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s shows the agents-only event: %.400s", where, b)
		}
	}

	// The agent is online, so every chat is routed to it.
	ag := dialRTM(t, ws+"/v3.5/agent/rtm/ws")
	ag.call(nil, "login", map[string]any{"token": "Bearer " + agentToken})

	// A v2 visitor.
	v2 := &visitor{t: t, base: base, id: "vis-v2"}
	v2.start()
	// A Rocket.Chat widget visitor.
	rcTok := "rc-visitor-token-1"
	if st, b := httpJSON(t, "POST", base+"/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": rcTok, "name": "Rita"}}, nil); st != 200 {
		t.Fatalf("rc visitor: %d %s", st, b)
	}
	st, b := httpJSON(t, "GET", base+"/api/v1/livechat/room?token="+rcTok, nil, nil)
	if st != 200 {
		t.Fatalf("rc room: %d %s", st, b)
	}
	var room struct {
		Room struct {
			ID string `json:"_id"`
		} `json:"room"`
	}
	if err := json.Unmarshal(b, &room); err != nil || room.Room.ID == "" {
		t.Fatalf("rc room %s: %v", b, err)
	}
	if st, b := httpJSON(t, "POST", base+"/api/v1/livechat/message", map[string]any{"token": rcTok, "rid": room.Room.ID, "msg": "hi from rc"}, nil); st != 200 {
		t.Fatalf("rc message: %d %s", st, b)
	}
	// The widget's DDP stream of the room.
	ddp := dialWS(t, ws+"/websocket")
	t.Cleanup(func() { ddp.conn.Close() })
	ddpSeen := func(m map[string]any) {
		if b, _ := json.Marshal(m); bytes.Contains(b, []byte(secret)) {
			t.Errorf("rocket.chat DDP stream shows the agents-only event: %.400s", b)
		}
	}
	ddp.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1"}})
	ddp.await(func(m map[string]any) bool { return m["msg"] == "connected" })
	ddp.send(map[string]any{"msg": "sub", "id": "s1", "name": "stream-room-messages",
		"params": []any{room.Room.ID, map[string]any{"useCollection": false, "args": []any{map[string]any{"token": rcTok, "visitorToken": rcTok}}}}})
	if _, m := ddp.await(func(m map[string]any) bool { return m["id"] == "s1" || m["msg"] == "ready" }); m["msg"] != "ready" {
		t.Fatalf("stream-room-messages: %v", m)
	}

	// A LiveChat v3 customer on RTM.
	st, b = httpJSON(t, "POST", base+"/v2/customer/token", map[string]any{"grant_type": "cookie", "response_type": "token", "client_id": "c", "organization_id": visOrg}, nil)
	var tok struct {
		AccessToken string `json:"access_token"`
		EntityID    string `json:"entity_id"`
	}
	if err := json.Unmarshal(b, &tok); st != 200 || err != nil {
		t.Fatalf("customer token: %d %s", st, b)
	}
	cu := dialRTM(t, ws+"/v3.5/customer/rtm/ws?organization_id="+visOrg)
	cuSeen := func(b []byte) { leaks("customer RTM push", b) }
	cu.call(cuSeen, "login", map[string]any{"token": "Bearer " + tok.AccessToken})
	cu.call(cuSeen, "start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi from v3"}}}}})

	// The agent writes into every chat it serves: the note, then a reply.
	st, b = httpJSON(t, "POST", base+"/v3.5/agent/action/list_chats", map[string]any{}, agentHdr)
	var lc struct {
		ChatsSummary []struct {
			ID string `json:"id"`
		} `json:"chats_summary"`
	}
	if err := json.Unmarshal(b, &lc); st != 200 || err != nil || len(lc.ChatsSummary) != 3 {
		t.Fatalf("agent list_chats: %d %s", st, b)
	}
	for _, ch := range lc.ChatsSummary {
		for _, ev := range refusedNarrowing {
			if st, b := httpJSON(t, "POST", base+"/v3.5/agent/action/send_event", map[string]any{"chat_id": ch.ID, "event": ev}, agentHdr); st != 400 ||
				!bytes.Contains(b, []byte(`"validation"`)) {
				t.Fatalf("send_event %v: %d %s, want a validation error", ev, st, b)
			}
		}
		for _, ev := range append(agentsOnly, map[string]any{"type": "message", "text": "for all"}) {
			if st, b := httpJSON(t, "POST", base+"/v3.5/agent/action/send_event", map[string]any{"chat_id": ch.ID, "event": ev}, agentHdr); st != 200 {
				t.Fatalf("send_event %v: %d %s", ev, st, b)
			}
		}
		// Control: agents see every note.
		if _, b := httpJSON(t, "POST", base+"/v3.5/agent/action/get_chat", map[string]any{"chat_id": ch.ID}, agentHdr); bytes.Count(b, []byte(secret)) != len(agentsOnly) {
			t.Fatalf("agent get_chat lacks notes (want %d): %s", len(agentsOnly), b)
		}
	}

	t.Run("livechat v3 customer", func(t *testing.T) {
		// The agents-only event was written first: had it been pushed, it
		// would come before the reply.
		cu.next(cuSeen, func(f visFrame) bool {
			return f.Type == "push" && f.Action == "incoming_event" && bytes.Contains(f.Payload, []byte("for all"))
		})
		chat := tok.EntityID
		for _, c := range []struct {
			action  string
			payload map[string]any
		}{
			{"get_chat", map[string]any{"chat_id": chat}},
			{"list_threads", map[string]any{"chat_id": chat}},
			{"list_chats", map[string]any{}},
		} {
			p := cu.call(cuSeen, c.action, c.payload)
			leaks("customer RTM "+c.action, p)
			if c.action != "list_chats" && !bytes.Contains(p, []byte("for all")) {
				t.Errorf("customer RTM %s lacks the reply: %s", c.action, p)
			}
			st, b := httpJSON(t, "POST", base+"/v3.5/customer/action/"+c.action+"?organization_id="+visOrg, c.payload,
				map[string]string{"Authorization": "Bearer " + tok.AccessToken})
			if st != 200 {
				t.Fatalf("customer web %s: %d %s", c.action, st, b)
			}
			leaks("customer Web API "+c.action, b)
		}
	})
	t.Run("livechat v2 visitor", func(t *testing.T) {
		evs := v2.poll()
		b, _ := json.Marshal(evs)
		leaks("v2 get_pending_messages", b)
		if !bytes.Contains(b, []byte("for all")) {
			t.Errorf("v2 poll lacks the reply: %s", b)
		}
	})
	t.Run("rocket.chat visitor", func(t *testing.T) {
		st, b := httpJSON(t, "GET", base+"/api/v1/livechat/messages.history/"+room.Room.ID+"?token="+rcTok, nil, nil)
		if st != 200 {
			t.Fatalf("history: %d %s", st, b)
		}
		leaks("rocket.chat messages.history", b)
		ddp.await(func(m map[string]any) bool {
			ddpSeen(m)
			b, _ := json.Marshal(m)
			return m["msg"] == "changed" && bytes.Contains(b, []byte("for all"))
		})
		if !bytes.Contains(b, []byte("for all")) {
			t.Errorf("history lacks the reply: %s", b)
		}
		// Control: the Rocket.Chat agent API shows agents-only messages.
		_, lb := httpJSON(t, "POST", base+"/api/v1/login", map[string]any{"user": "jane", "password": agentPassword}, nil)
		var login struct {
			Data struct{ UserID, AuthToken string } `json:"data"`
		}
		if err := json.Unmarshal(lb, &login); err != nil {
			t.Fatal(err)
		}
		_, sb := httpJSON(t, "GET", base+"/api/v1/chat.syncMessages?roomId="+room.Room.ID+"&lastUpdate=2000-01-01T00:00:00.000Z", nil,
			map[string]string{"X-User-Id": login.Data.UserID, "X-Auth-Token": login.Data.AuthToken})
		if !strings.Contains(string(sb), secret) {
			t.Errorf("agent syncMessages lacks the notes: %.400s", sb)
		}
	})
}
