package rocketchat

import (
	"strings"
	"testing"
)

// TestRoomVisitorChange: PUT livechat/room.visitor gives a room to another
// visitor, as Rocket.Chat's Livechat.changeRoomVisitor (checked in
// apps/meteor/app/livechat/imports/server/rest/rooms.ts: body rid,
// oldVisitorId, newVisitorId; agent access to the room; answer {room}).
// Over real sockets: the old visitor's open subscriptions of the room end
// with nosub and never see the new visitor's record (Rocket.Chat would
// broadcast visitorData with it, token included, to them: refused); the
// old token no longer opens the room on REST or DDP; the new one does,
// and its subscription gets the room's messages and visitorData.
func TestRoomVisitorChange(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	ann := h.login("ann", "ann-secret")
	oldID := h.visitor("tok-old", "Olga")["_id"].(string)
	newID := h.visitor("tok-new", "Nina")["_id"].(string)
	rid := h.room("tok-old")
	h.send("tok-old", rid, "before the change")

	old := dialDDP(t, h.srv.URL, "/websocket")
	old.connect()
	msgSub := old.mustSub(streamRoomMessages, rid, "tok-old")
	lcSub := old.mustSub(streamLivechatRoom, rid, "tok-old")

	m := h.ok("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": oldID, "newVisitorId": newID}, ann)
	room := m["room"].(map[string]any)
	if v := room["v"].(map[string]any); room["_id"] != rid || v["_id"] != newID || v["token"] != "tok-new" {
		t.Errorf("room.visitor answer %v", m)
	}
	// Both subscriptions end; nothing of the new visitor reaches them.
	for _, id := range []string{msgSub, lcSub} {
		f := old.await(func(f ddpFrame) bool {
			if f.msg() == "changed" && (strings.Contains(f.raw, "tok-new") || strings.Contains(f.raw, "Nina")) {
				t.Errorf("old visitor's session got the new visitor's data: %s", f.raw)
			}
			return f.msg() == "nosub" && f.id() == id
		})
		if e, _ := f.m["error"].(map[string]any); e == nil {
			t.Errorf("nosub without error: %s", f.raw)
		}
	}
	// The old token no longer opens the room; the new one does.
	if _, f := old.sub(streamRoomMessages, rid, ddpWidgetOpts("tok-old")); f.msg() != "nosub" {
		t.Errorf("old token subscribes again: %s", f.raw)
	}
	code, body, _ := h.do("GET", "/api/v1/livechat/messages.history/"+rid+"?token=tok-old", nil, nil)
	if code != 400 || body["success"] != false {
		t.Errorf("old token reads the history: %d %v", code, body)
	}
	code, body, _ = h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-old", "rid": rid, "msg": "x"}, nil)
	if code != 400 || body["success"] != false {
		t.Errorf("old token posts: %d %v", code, body)
	}
	if r := h.ok("GET", "/api/v1/livechat/room?token=tok-new", nil, nil)["room"].(map[string]any); r["_id"] != rid {
		t.Errorf("new visitor's room is %v, want %s", r["_id"], rid)
	}
	hist := h.history("tok-new", rid)
	if len(hist) == 0 {
		t.Error("new visitor sees no history")
	}
	nw := dialDDP(t, h.srv.URL, "/websocket")
	nw.connect()
	nw.mustSub(streamRoomMessages, rid, "tok-new")
	h.send("tok-new", rid, "after the change")
	f := nw.changed(streamRoomMessages)
	if _, args := ddpStreamArgs(t, f); args[0].(map[string]any)["msg"] != "after the change" {
		t.Errorf("new visitor's stream: %s", f.raw)
	}
	// The agent's view: the room's visitor is the new one.
	rooms := h.ok("GET", "/api/v1/livechat/visitor/tok-new/room", nil, ann)["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["_id"] != rid {
		t.Errorf("agent: new visitor's rooms %v", rooms)
	}
	if rooms := h.ok("GET", "/api/v1/livechat/visitor/tok-old/room", nil, ann)["rooms"].([]any); len(rooms) != 0 {
		t.Errorf("agent: old visitor's rooms %v", rooms)
	}
	// The old visitor has no open room any more and may start one; the
	// room cannot go back to it while it has.
	if r := h.ok("GET", "/api/v1/livechat/room?token=tok-old", nil, nil)["room"].(map[string]any); r["_id"] == rid {
		t.Fatalf("old visitor's room is still %v", r["_id"])
	}
	code, body, _ = h.do("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": newID, "newVisitorId": oldID}, ann)
	wantErr(t, "to a visitor with an open room", code, body, 400, map[string]any{"success": false, "error": "error-not-allowed"})
}
