package rocketchat

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// TestDDPLegacyConversation runs Rocket.Chat's documented third-party DDP
// flow (seeds/rocketchat-livechat-realtime-api.md): getInitialData,
// registerGuest, sendMessageLivechat with a client-chosen rid, subscribe
// with that rid, getAgentData, loadHistory, closeByVisitor.
func TestDDPLegacyConversation(t *testing.T) {
	env := newDDPEnv(t, nil)
	env.online("amy@x")
	c := env.dial(t, "/websocket")
	c.connect()

	// Unknown token: settings, no visitor, no room.
	info := c.ok("livechat:getInitialData", "tok-L").(map[string]any)
	for _, k := range []string{"enabled", "title", "color", "registrationForm", "triggers", "departments",
		"allowSwitchingDepartments", "online", "offlineTitle", "displayOfflineForm", "showConnecting"} {
		if _, ok := info[k]; !ok {
			t.Errorf("getInitialData without %q", k)
		}
	}
	if info["room"] != nil || info["visitor"] != nil || info["online"] != true || info["title"] != "Rocket.Chat" {
		t.Fatalf("getInitialData for a new token: %v", info)
	}

	reg := c.ok("livechat:registerGuest", map[string]any{"token": "tok-L", "name": "Lea", "email": "LEA@example.com",
		"customFields": []any{
			map[string]any{"key": "plan", "value": "gold", "overwrite": true},
			map[string]any{"key": "roomish", "value": "x", "scope": "room"},
			"junk",
		}}).(map[string]any)
	vis := reg["visitor"].(map[string]any)
	if reg["userId"] != vis["_id"] || vis["token"] != "tok-L" || vis["name"] != "Lea" ||
		!strings.HasPrefix(vis["username"].(string), "guest-") {
		t.Fatalf("registerGuest: %v", reg)
	}
	v, err := env.s.visitorByToken(context.Background(), "tok-L")
	if err != nil || v.Email != "lea@example.com" || v.Fields["plan"] != "gold" || v.Fields["roomish"] != "" {
		t.Fatalf("visitor after registerGuest: %+v, %v", v, err)
	}

	// The legacy client picks the room id and the message id.
	const rid, mid = "ClientRoomId00001", "ClientMsgId000001"
	send := func(id, text string) map[string]any {
		t.Helper()
		return c.ok("sendMessageLivechat", map[string]any{"_id": id, "rid": rid, "msg": text, "token": "tok-L"}).(map[string]any)
	}
	first := send(mid, "Hello from DDP")
	if first["_id"] != mid || first["rid"] != rid || first["msg"] != "Hello from DDP" || first["newRoom"] != true ||
		first["showConnecting"] != false {
		t.Fatalf("first sendMessageLivechat: %v", first)
	}
	ddpEJSONDate(t, first["ts"])
	// Idempotent: the same _id returns the same message, no new room.
	again := send(mid, "Hello from DDP")
	if again["_id"] != mid || again["newRoom"] != false || !ddpEqualTS(t, again["ts"], first["ts"]) {
		t.Fatalf("retried sendMessageLivechat: %v", again)
	}
	conv, open, err := env.d.OpenConversation(context.Background(), v.ID)
	if err != nil || !open {
		t.Fatalf("room: %v %v", open, err)
	}
	evs, _ := env.st.Events(context.Background(), conv.ID, 1, 0)
	n := 0
	for _, e := range evs {
		if e.Kind == model.KindMessage && e.ClientKey == mid {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d stored messages with _id %s, want 1", n, mid)
	}

	// Subscribing with the client's rid works; messages carry that rid.
	c.mustSub(streamRoomMessages, rid, "tok-L")
	c.mustSub(streamLivechatRoom, rid, "tok-L")
	second := send("ClientMsgId000002", "second")
	f := c.changed(streamRoomMessages)
	if ev, args := ddpStreamArgs(t, f); ev != rid || args[0].(map[string]any)["rid"] != rid || args[0].(map[string]any)["_id"] != second["_id"] {
		t.Fatalf("aliased stream frame %s", f.raw)
	}

	agent := c.ok("livechat:getAgentData", map[string]any{"roomId": rid, "token": "tok-L"}).(map[string]any)
	if agent["username"] != "amy" || agent["name"] != "Amy" {
		t.Fatalf("getAgentData: %v", agent)
	}

	hist := c.ok("livechat:loadHistory", map[string]any{"token": "tok-L", "rid": rid, "limit": 10}).(map[string]any)
	msgs := hist["messages"].([]any)
	if len(msgs) < 2 || msgs[0].(map[string]any)["msg"] != "second" || hist["unreadNotLoaded"] != 0.0 {
		t.Fatalf("loadHistory: %v", hist)
	}
	ddpEJSONDate(t, msgs[0].(map[string]any)["ts"])
	// end: only messages before it; ls: unread ones not loaded are counted.
	secondTS := ddpEJSONDate(t, msgs[0].(map[string]any)["ts"])
	older := c.ok("livechat:loadHistory", map[string]any{"token": "tok-L", "rid": rid,
		"end": map[string]any{"$date": secondTS.UnixMilli()}, "limit": 1}).(map[string]any)
	if om := older["messages"].([]any); len(om) != 1 || om[0].(map[string]any)["msg"] == "second" {
		t.Fatalf("loadHistory end: %v", older)
	}
	unread := c.ok("livechat:loadHistory", map[string]any{"token": "tok-L", "rid": rid, "limit": 1,
		"ls": map[string]any{"$date": 0}}).(map[string]any)
	if unread["unreadNotLoaded"].(float64) < 1 || unread["firstUnread"] == nil {
		t.Fatalf("loadHistory ls: %v", unread)
	}
	c.fails("invalid-room", "livechat:loadHistory", map[string]any{"token": "tok-L", "rid": "nope"})
	c.fails("invalid-visitor", "livechat:loadHistory", map[string]any{"token": "who", "rid": rid})
	if r := c.ok("livechat:loadHistory", map[string]any{"rid": rid}); r != nil {
		t.Fatalf("loadHistory without token = %v, want no result", r)
	}

	if r := c.ok("livechat:closeByVisitor", map[string]any{"roomId": rid, "token": "tok-L"}); r != true {
		t.Fatalf("closeByVisitor = %v", r)
	}
	f = c.await(func(f ddpFrame) bool { return f.msg() == "changed" && strings.Contains(f.raw, "livechat-close") })
	if _, args := ddpStreamArgs(t, f); args[0].(map[string]any)["msg"] != "Closed by visitor" {
		t.Fatalf("close message %s", f.raw)
	}
	if r := c.ok("livechat:closeByVisitor", map[string]any{"roomId": rid, "token": "tok-L"}); r != false {
		t.Fatalf("second closeByVisitor = %v", r)
	}
	c.fails("invalid-token", "livechat:closeByVisitor", map[string]any{"roomId": rid, "token": "who"})

	// A message to the closed room opens a new one (Rocket.Chat gives it a
	// new random rid).
	third := send("ClientMsgId000003", "after close")
	if third["rid"] == rid || third["rid"] == string(conv.ID) || third["newRoom"] != true {
		t.Fatalf("message after close: %v", third)
	}
}

func ddpEqualTS(t *testing.T, a, b any) bool {
	t.Helper()
	return ddpEJSONDate(t, a).Equal(ddpEJSONDate(t, b))
}

func TestDDPSendMessageErrors(t *testing.T) {
	env := newDDPEnv(t, nil)
	c := env.dial(t, "/websocket")
	c.connect()
	msg := func(m map[string]any) map[string]any {
		base := map[string]any{"_id": "m1", "rid": "r1", "msg": "hi", "token": "tok-E"}
		for k, v := range m {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		return base
	}
	c.fails("invalid-token", "sendMessageLivechat", msg(nil))
	env.visitor("tok-E", "Eve")
	c.fails(400, "sendMessageLivechat", msg(map[string]any{"msg": nil}))
	c.fails(400, "sendMessageLivechat", msg(map[string]any{"_id": 5}))
	c.fails(400, "sendMessageLivechat")
	c.fails(400, "sendMessageLivechat", msg(nil), "not an agent")
	c.fails(400, "sendMessageLivechat", msg(nil), map[string]any{"agentId": "a"})
	c.fails("message-length-exceeds-character-limit", "sendMessageLivechat", msg(map[string]any{"msg": strings.Repeat("x", ddpTestMaxText+1)}))
	// Nobody online: no room can start.
	f := c.fails("no-agent-online", "sendMessageLivechat", msg(nil))
	if f.m["error"].(map[string]any)["reason"] != "Sorry, no online agents" {
		t.Fatalf("no agent: %s", f.raw)
	}
	env.online("amy@x")
	ok := c.ok("sendMessageLivechat", msg(nil), map[string]any{"agentId": "amy@x", "username": "amy"}).(map[string]any)
	if ok["newRoom"] != true {
		t.Fatalf("send with a preferred agent: %v", ok)
	}
}

func TestDDPVisitorMethods(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.offlineMinInterval = time.Hour })
	env.online("amy@x")
	c := env.dial(t, "/websocket")
	c.connect()

	// registerGuest errors.
	c.fails("error-invalid-token", "livechat:registerGuest", map[string]any{"name": "x"})
	c.fails("error-invalid-department", "livechat:registerGuest", map[string]any{"token": "tok-M", "department": "nope"})
	c.fails(400, "livechat:registerGuest", "tok-M")
	c.fails(400, "livechat:registerGuest", map[string]any{"token": "tok-M", "name": 5})

	v := env.visitor("tok-M", "Max")
	if r := c.ok("livechat:loginByToken", "tok-M").(map[string]any); r["_id"] != string(v.ID) {
		t.Fatalf("loginByToken: %v", r)
	}
	if r := c.ok("livechat:loginByToken", "who"); r != nil {
		t.Fatalf("loginByToken unknown = %v", r)
	}
	c.fails(400, "livechat:loginByToken", 7)

	// Custom fields.
	if r := c.ok("livechat:setCustomField", "tok-M", "tier", "gold"); r != true {
		t.Fatalf("setCustomField = %v", r)
	}
	c.ok("livechat:setCustomField", "tok-M", "tier", "silver", false) // no overwrite
	got, _ := env.s.visitorByToken(context.Background(), "tok-M")
	if got.Fields["tier"] != "gold" {
		t.Fatalf("fields %v", got.Fields)
	}
	c.fails("invalid-token", "livechat:setCustomField", "who", "k", "v")
	c.fails("invalid-custom-field", "livechat:setCustomField", "tok-M", "_rc.secret", "v")
	c.fails("invalid-custom-field", "livechat:setCustomField", "tok-M", "undefined", "v")
	c.fails(400, "livechat:setCustomField", "tok-M", "k", 1)

	// Next agent: amy, while the visitor has no open room.
	if a := c.ok("livechat:getNextAgent", map[string]any{"token": "tok-M"}).(map[string]any); a["username"] != "amy" {
		t.Fatalf("getNextAgent: %v", a)
	}
	if a := c.ok("livechat:getNextAgent", map[string]any{"token": "tok-M", "department": "sales"}).(map[string]any); a["username"] == nil {
		t.Fatalf("getNextAgent sales: %v", a)
	}

	// startFileUploadRoom starts the room.
	up := c.ok("livechat:startFileUploadRoom", nil, "tok-M").(map[string]any)
	room := up["room"].(map[string]any)
	if up["newRoom"] != true || room["t"] != "l" || room["_id"] == nil {
		t.Fatalf("startFileUploadRoom: %v", up)
	}
	ddpEJSONDate(t, room["ts"])
	rid := room["_id"].(string)
	if again := c.ok("livechat:startFileUploadRoom", rid, "tok-M").(map[string]any); again["newRoom"] != false {
		t.Fatalf("startFileUploadRoom again: %v", again)
	}
	c.fails("invalid-token", "livechat:startFileUploadRoom", rid, "who")
	if r := c.ok("livechat:getNextAgent", map[string]any{"token": "tok-M"}); r != nil {
		t.Fatalf("getNextAgent with an open room = %v", r)
	}

	// getInitialData now reports visitor, room and agent.
	info := c.ok("livechat:getInitialData", "tok-M").(map[string]any)
	if info["room"].(map[string]any)["_id"] != rid || info["visitor"].(map[string]any)["_id"] != string(v.ID) ||
		info["agentData"].(map[string]any)["username"] != "amy" {
		t.Fatalf("getInitialData: %v", info)
	}
	if _, leaked := info["visitor"].(map[string]any)["token"]; leaked {
		t.Fatal("getInitialData visitor carries the token")
	}
	if info := c.ok("livechat:getInitialData", "tok-M", "sales").(map[string]any); info["room"] != nil {
		t.Fatalf("getInitialData in another department: %v", info["room"])
	}
	c.fails(400, "livechat:getInitialData")

	// getAgentData: unassigned rooms have no result; errors.
	c.fails("error-invalid-room", "livechat:getAgentData", map[string]any{"roomId": "nope", "token": "tok-M"})
	c.fails("error-invalid-room", "livechat:getAgentData", map[string]any{"roomId": rid, "token": "who"})
	c.fails(400, "livechat:getAgentData", map[string]any{"roomId": rid})

	// Page visits: an agents-only note, no result.
	if r := c.call("livechat:pageVisited", "tok-M", rid, map[string]any{"change": "url", "title": "Pricing",
		"location": map[string]any{"href": "https://example.com/pricing"}}); r.has("result") || r.has("error") {
		t.Fatalf("pageVisited: %s", r.raw)
	}
	evs, _ := env.st.Events(context.Background(), model.ConvID(rid), 1, 0)
	if last := evs[len(evs)-1]; last.Visibility != model.VisibleAgents || !strings.Contains(last.Text, "pricing") {
		t.Fatalf("page visit event %+v", last)
	}
	c.fails(400, "livechat:pageVisited", "tok-M", rid, "not an object")

	// Survey.
	if r := c.ok("livechat:saveSurveyFeedback", "tok-M", rid, []any{
		map[string]any{"name": "satisfaction", "value": "5"}, map[string]any{"name": "bogus", "value": "1"}}); r != true {
		t.Fatalf("saveSurveyFeedback = %v", r)
	}
	if r := c.ok("livechat:saveSurveyFeedback", "tok-M", rid, []any{map[string]any{"name": "bogus", "value": "1"}}); r != nil {
		t.Fatalf("saveSurveyFeedback with nothing valid = %v", r)
	}
	c.fails(400, "livechat:saveSurveyFeedback", "tok-M", rid, []any{map[string]any{"name": 1}})

	// Department switch.
	if r := c.ok("livechat:setDepartmentForVisitor", map[string]any{"roomId": rid, "visitorToken": "tok-M", "departmentId": "sales"}); r != true {
		t.Fatalf("setDepartmentForVisitor = %v", r)
	}
	if conv, _ := env.st.Conversation(context.Background(), model.ConvID(rid)); conv.Department != "sales" {
		t.Fatalf("department after switch = %q", conv.Department)
	}
	c.fails("error-invalid-department", "livechat:setDepartmentForVisitor", map[string]any{"roomId": rid, "visitorToken": "tok-M", "departmentId": "nope"})
	c.fails(400, "livechat:setDepartmentForVisitor", map[string]any{"roomId": rid})

	// Agents' transfer is never a visitor's.
	f := c.fails("error-not-allowed", "livechat:transfer", map[string]any{"roomId": rid, "departmentId": "sales"})
	if f.m["error"].(map[string]any)["details"].(map[string]any)["method"] != "livechat:transfer" {
		t.Fatalf("transfer: %s", f.raw)
	}

	// Presence.
	c.ok("UserPresence:away", map[string]any{"visitor": "tok-M"})
	if st := env.s.visitorStatus(v.ID); st != "away" {
		t.Fatalf("presence after UserPresence:away = %q", st)
	}
	c.ok("livechat:setUpConnection", map[string]any{"token": "tok-M"})
	c.ok("UserPresence:away")
	c.ok("UserPresence:online")
	if st := env.s.visitorStatus(v.ID); st != "online" {
		t.Fatalf("presence after UserPresence:online = %q", st)
	}

	// Offline messages, rate limited per connection.
	if r := c.ok("livechat:sendOfflineMessage", map[string]any{"name": "Max", "email": "max@example.com", "message": "call me"}); r != true {
		t.Fatalf("sendOfflineMessage = %v", r)
	}
	f = c.fails("too-many-requests", "livechat:sendOfflineMessage", map[string]any{"name": "Max", "email": "max@example.com", "message": "again"})
	if !strings.Contains(f.raw, "timeToReset") {
		t.Fatalf("rate limit: %s", f.raw)
	}
	c.fails(400, "livechat:sendOfflineMessage", map[string]any{"name": "Max", "email": "max@example.com", "message": "x", "department": "sales"})
	c2 := env.dial(t, "/websocket")
	c2.connect()
	c2.fails("error-invalid-email-address", "livechat:sendOfflineMessage", map[string]any{"name": "Max", "email": "not-an-email", "message": "x"})
}

// TestDDPSendMessageAnswerOneWrite: a sendMessageLivechat on a socket
// that follows the room (stream-room-messages and stream-livechat-room,
// as the legacy widget does) is answered in one write(2): `updated`,
// `result`, then the `changed` that streams the posted message, in that
// order, where the answer used to leave as soon as the post returned and
// the stream frame a moment later in a write of its own. Also over SockJS.
func TestDDPSendMessageAnswerOneWrite(t *testing.T) {
	for _, path := range []string{"/websocket", "/sockjs/123/abcdefgh/websocket"} {
		t.Run(path, func(t *testing.T) {
			env := newDDPEnv(t, nil)
			env.online("amy@x")
			v := env.visitor("tok-w", "Wanda")
			conv := env.room(v)
			c := env.dial(t, path)
			c.connect()
			c.mustSub(streamRoomMessages, string(conv.ID), "tok-w")
			c.mustSub(streamLivechatRoom, string(conv.ID), "tok-w")
			quote := func(s string) string {
				if !c.sockjs {
					return s
				}
				b, _ := json.Marshal(s) // inside a SockJS frame's string
				return strings.Trim(string(b), `"`)
			}
			for i := range 20 {
				mid := fmt.Sprintf("OneWriteMsg%06d", i)
				res := c.ok("sendMessageLivechat", map[string]any{"_id": mid, "rid": string(conv.ID), "msg": "hi", "token": "tok-w"})
				if res.(map[string]any)["_id"] != mid {
					t.Fatalf("result %v", res)
				}
				c.await(func(f ddpFrame) bool {
					return f.msg() == "changed" && strings.Contains(f.raw, `"_id":"`+mid+`"`)
				})
				id := fmt.Sprintf("ddp-%d", c.seq)
				updated := quote(`{"msg":"updated","methods":["` + id + `"]}`)
				result := quote(`{"msg":"result","id":"` + id + `"`)
				changed := quote(`{"msg":"changed","collection":"stream-room-messages"`)
				ws := env.writes.containing(result)
				if len(ws) != 1 {
					t.Fatalf("message %d: %d writes hold the result, want 1", i, len(ws))
				}
				w := string(ws[0])
				u, r, ch := strings.Index(w, updated), strings.Index(w, result), strings.Index(w, changed)
				if u < 0 || r < u || ch < r || !strings.Contains(w[ch:], `\"_id\":\"`+mid) && !strings.Contains(w[ch:], `"_id":"`+mid) {
					t.Fatalf("message %d: want updated, result and the stream frame of %s in one write, in that order; the write was %q", i, mid, w)
				}
			}
		})
	}
}

// TestDDPSendMessageRetryAnswersAtOnce: the answer waits for its
// message's stream frame only when the frame is still to come. A retry of
// a message sent before the socket followed the room (the same _id: the
// first message comes back, nothing new is posted or streamed) is
// answered without waiting; the wait is made endless here, so a wait
// shows as a hung call.
func TestDDPSendMessageRetryAnswersAtOnce(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.echoWait = time.Hour })
	env.online("amy@x")
	v := env.visitor("tok-r", "Rita")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	msg := map[string]any{"_id": "RetryMsg000000001", "rid": string(conv.ID), "msg": "hi", "token": "tok-r"}
	first := c.ok("sendMessageLivechat", msg).(map[string]any)
	c.mustSub(streamRoomMessages, string(conv.ID), "tok-r")
	again := c.ok("sendMessageLivechat", msg).(map[string]any)
	if again["_id"] != first["_id"] || again["ts"] == nil || fmt.Sprint(again["ts"]) != fmt.Sprint(first["ts"]) {
		t.Fatalf("retry answered %v, want the first message %v", again, first)
	}
	// A new message still streams and is answered.
	msg["_id"], msg["msg"] = "RetryMsg000000002", "next"
	c.ok("sendMessageLivechat", msg)
	c.await(func(f ddpFrame) bool { return f.msg() == "changed" && strings.Contains(f.raw, "RetryMsg000000002") })
}

// URLs a DDP method builds (a file message's fileUpload.publicFilePath in
// livechat:loadHistory) take their scheme as a REST answer's would:
// X-Forwarded-Proto on the upgrade request counts only when
// Config.TrustForwarded trusts the peer, which it decides on the peer's
// address (as chatgate's server.trusted_proxies do). The session once kept
// a copy of the upgrade request without the peer's address, so a trusted
// proxy's https was never believed on DDP.
func TestDDPMethodURLsTrustForwardedProto(t *testing.T) {
	cases := []struct {
		name    string
		trusted bool
		proto   string
		want    string
	}{
		{"trusted proxy says https", true, "https", "https://"},
		{"untrusted peer says https: ignored", false, "https", "http://"},
		{"trusted, no header", true, "", "http://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newDDPEnv(t, func(s *Surface) {
				s.cfg.TrustForwarded = func(r *http.Request) bool {
					host, _, err := net.SplitHostPort(r.RemoteAddr)
					return tc.trusted && err == nil && host == "127.0.0.1"
				}
			})
			e.online("amy@x")
			conv := e.room(e.visitor("tok-F", "Fay"))
			if _, _, err := e.d.Post(context.Background(), desk.PostRequest{Conv: conv.ID,
				Author: model.Author{Kind: model.AuthorAgent, ID: "amy@x"},
				Draft: desk.Draft{Kind: model.KindFile, File: &model.File{Name: "a.pdf", ContentType: "application/pdf",
					URL: "http://internal" + uploadURLPath("f1", "a.pdf")}}}); err != nil {
				t.Fatalf("file post: %v", err)
			}
			h := http.Header{}
			if tc.proto != "" {
				h.Set("X-Forwarded-Proto", tc.proto)
			}
			c := dialDDPHeader(t, e.srv.URL, "/websocket", h)
			c.connect()
			hist := c.ok("livechat:loadHistory", map[string]any{"token": "tok-F", "rid": e.s.roomID(context.Background(), conv.ID), "limit": 10}).(map[string]any)
			var path string
			for _, m := range hist["messages"].([]any) {
				if fu, ok := m.(map[string]any)["fileUpload"].(map[string]any); ok {
					path, _ = fu["publicFilePath"].(string)
				}
			}
			if !strings.HasPrefix(path, tc.want) {
				t.Errorf("fileUpload.publicFilePath = %q, want a %s URL (history %v)", path, tc.want, hist)
			}
		})
	}
}
