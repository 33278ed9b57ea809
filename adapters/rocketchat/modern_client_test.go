package rocketchat

import (
	"context"
	"strings"
	"testing"
	"time"

	"chatgate/core/desk"
)

// TestDepartmentTransfer: POST livechat/visitor/department.transfer, the
// route @rocket.chat/ddp-client 1.1.2's transferChat calls (Rocket.Chat
// 6+ room.ts, checked): {"success":true} or API.v1.failure("<code>").
// Rocket.Chat reads the room by rid alone; chatgate requires the token's
// own room.
func TestDepartmentTransfer(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.online("bob@x")
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-dt", "department": "sup"}}, nil)
	rid := h.room("tok-dt")
	h.visitor("tok-x", "Xavier")
	const path = "/api/v1/livechat/visitor/department.transfer"
	for _, tc := range []struct {
		name string
		body map[string]any
		want map[string]any
	}{
		{"missing token", map[string]any{"rid": rid, "department": "sales"},
			map[string]any{"success": false, "errorType": "invalid-params", "error": "must have required property 'token'"}},
		{"unknown token", map[string]any{"token": "nope", "rid": rid, "department": "sales"},
			map[string]any{"success": false, "error": "invalid-token"}},
		{"another visitor's room", map[string]any{"token": "tok-x", "rid": rid, "department": "sales"},
			map[string]any{"success": false, "error": "error-invalid-room"}},
		{"same department", map[string]any{"token": "tok-dt", "rid": rid, "department": "sup"},
			map[string]any{"success": false, "error": "error-transfering-chat"}},
		{"unknown department", map[string]any{"token": "tok-dt", "rid": rid, "department": "nope"},
			map[string]any{"success": false, "error": "error-transfering-chat"}},
	} {
		code, m, _ := h.do("POST", path, tc.body, nil)
		if code != 400 || !equalJSON(m, tc.want) {
			t.Errorf("%s: %d %v, want 400 %v", tc.name, code, m, tc.want)
		}
	}
	m := h.ok("POST", path, map[string]any{"token": "tok-dt", "rid": rid, "department": "sales"}, nil)
	if len(m) != 1 {
		t.Errorf("success body %v, want only success", m)
	}
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-dt", nil, nil)["room"].(map[string]any)
	if room["departmentId"] != "sales" {
		t.Errorf("room after transfer %v", room)
	}
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-dt"}, nil)
	code, m, _ := h.do("POST", path, map[string]any{"token": "tok-dt", "rid": rid, "department": "sup"}, nil)
	if code != 400 || !equalJSON(m, map[string]any{"success": false, "error": "This_conversation_is_already_closed"}) {
		t.Errorf("closed: %d %v", code, m)
	}
}

// TestAppsRoutesAnswerJSON: /api/apps/… (ddp-client's sendUiInteraction)
// answers Rocket.Chat's JSON for an unknown resource, preflights included.
func TestAppsRoutesAnswerJSON(t *testing.T) {
	h := newRH(t)
	code, m, hdr := h.do("POST", "/api/apps/ui.interaction/some-app", map[string]any{"type": "blockAction"}, map[string]string{"x-visitor-token": "t"})
	if code != 404 || !equalJSON(m, map[string]any{"success": false, "error": "Resource not found"}) || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("apps route: %d %v %v", code, m, hdr)
	}
	code, _, hdr = h.do("OPTIONS", "/api/apps/ui.interaction/some-app", nil, nil)
	if code != 200 || !strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "x-visitor-token") {
		t.Errorf("preflight: %d %v", code, hdr)
	}
}

// TestConfigQueueInfoAndOnline: livechat/config for a visitor whose room
// waits in the queue carries queueInfo (Rocket.Chat EE's
// getExtraConfigInfo → getLivechatQueueInfo, checked), and a visitor with
// an open room is online whoever accepts chats now (never sent to the
// offline form).
func TestConfigQueueInfoAndOnline(t *testing.T) {
	h := newRH(t)
	h.s.cfg.QueueWaitPerChat = time.Minute
	h.online("bob@x") // serves only sales
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-s", "department": "sales"}}, nil)
	h.room("tok-s")
	for _, tok := range []string{"tok-q1", "tok-q2"} {
		v, err := h.s.saveVisitor(context.Background(), visitorInput{token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Department: "sup", Origin: System, Author: visitorAuthor(v)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := h.ok("GET", "/api/v1/livechat/config?token=tok-q2&department=sup", nil, nil)["config"].(map[string]any)
	qi, _ := cfg["queueInfo"].(map[string]any)
	if qi["spot"] != float64(2) || qi["estimatedWaitTimeSeconds"] != float64(120) || cfg["online"] != true {
		t.Errorf("queued visitor config: queueInfo %v online %v", cfg["queueInfo"], cfg["online"])
	}
	// Nobody accepts support chats, but the queued visitor's conversation
	// goes on; a visitor without a room gets the offline form.
	cfg = h.ok("GET", "/api/v1/livechat/config?department=sup", nil, nil)["config"].(map[string]any)
	if cfg["online"] != false || cfg["queueInfo"] != nil {
		t.Errorf("no token: online %v queueInfo %v", cfg["online"], cfg["queueInfo"])
	}
	// The serving agent stops accepting chats: its visitor stays online.
	h.d.SetAccepting("bob@x", false)
	cfg = h.ok("GET", "/api/v1/livechat/config?token=tok-s&department=sales", nil, nil)["config"].(map[string]any)
	if cfg["online"] != true || cfg["room"] == nil || cfg["queueInfo"] != nil {
		t.Errorf("served visitor, agent not accepting: online %v room %v queueInfo %v", cfg["online"], cfg["room"], cfg["queueInfo"])
	}
	c := dialDDP(t, h.srv.URL, "/websocket")
	c.connect()
	info := c.ok("livechat:getInitialData", "tok-s").(map[string]any)
	if info["online"] != true || info["room"] == nil {
		t.Errorf("getInitialData: online %v room %v", info["online"], info["room"])
	}
}

// TestVisitorDataStream: stream-livechat-room sends visitorData when the
// room's visitor record changes (the visitor registers again with a new
// name, an agent updates the customer), as Rocket.Chat does.
func TestVisitorDataStream(t *testing.T) {
	env := newDDPEnv(t, func(s *Surface) { s.ddp.roomPoll = 5 * time.Millisecond })
	env.online("amy@x")
	v := env.visitor("tok-vd", "Vic")
	conv := env.room(v)
	c := env.dial(t, "/websocket")
	c.connect()
	c.mustSub(streamLivechatRoom, string(conv.ID), "tok-vd")
	if _, err := env.s.saveVisitor(context.Background(), visitorInput{token: "tok-vd", name: "Victoria", hasName: true}); err != nil {
		t.Fatal(err)
	}
	visitorData := func() map[string]any {
		f := c.await(func(f ddpFrame) bool {
			return f.msg() == "changed" && f.m["collection"] == streamLivechatRoom && strings.Contains(f.raw, `"visitorData"`)
		})
		_, args := ddpStreamArgs(t, f)
		return args[0].(map[string]any)["visitor"].(map[string]any)
	}
	if got := visitorData(); got["name"] != "Victoria" || got["token"] != "tok-vd" || got["_id"] != string(v.ID) {
		t.Errorf("visitorData after registering again: %v", got)
	}
	phone := "+123"
	if _, err := env.d.UpdateVisitor(context.Background(), v.ID, desk.VisitorUpdate{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if got := visitorData(); !equalJSON(got["phone"], []any{map[string]any{"phoneNumber": "+123"}}) {
		t.Errorf("visitorData after an agent's update: %v", got)
	}
}

// TestRoomSourceType: room.source.type is "api" unless the client sent
// the widget's rc_is_widget=t cookie (Rocket.Chat's API.v1 isWidget(),
// room.js, checked), on REST and DDP alike.
func TestRoomSourceType(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	for _, tc := range []struct {
		token, cookie, want string
	}{
		{"tok-api", "", "api"},
		{"tok-wrong", "rc_is_widget=f", "api"},
		{"tok-widget", "rc_is_widget=t", "widget"},
	} {
		h.visitor(tc.token, "")
		hdr := map[string]string{}
		if tc.cookie != "" {
			hdr["Cookie"] = tc.cookie
		}
		room := h.ok("GET", "/api/v1/livechat/room?token="+tc.token, nil, hdr)["room"].(map[string]any)
		if !equalJSON(room["source"], map[string]any{"type": tc.want}) {
			t.Errorf("%s: source %v, want %s", tc.token, room["source"], tc.want)
		}
		// Every later rendering keeps it.
		again := h.ok("GET", "/api/v1/livechat/room?token="+tc.token, nil, nil)["room"].(map[string]any)
		if !equalJSON(again["source"], room["source"]) {
			t.Errorf("%s: source later %v", tc.token, again["source"])
		}
	}
	h.visitor("tok-ddp", "")
	c := dialDDP(t, h.srv.URL, "/websocket")
	c.connect()
	res := c.ok("sendMessageLivechat", map[string]any{"_id": "m-src", "rid": "DdpRoomSrc123456", "msg": "hi", "token": "tok-ddp"}).(map[string]any)
	_ = res
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-ddp", nil, nil)["room"].(map[string]any)
	if !equalJSON(room["source"], map[string]any{"type": "api"}) {
		t.Errorf("DDP room without the cookie: source %v", room["source"])
	}
}
