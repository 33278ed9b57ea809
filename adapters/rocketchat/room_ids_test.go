package rocketchat

import (
	"testing"
)

// TestClientChosenRoomID: the realtime seed tells clients to pick a new
// room's _id before the first message (sendMessageLivechat), and
// Rocket.Chat 3.x's GET livechat/room?rid= starts the room under the rid
// it is given. The room keeps that _id on every route, method and stream;
// chatgate's conversation id stays internal.
func TestClientChosenRoomID(t *testing.T) {
	const ddpRID, restRID = "ClientRoomAbc1234", "RestRoomXyz987654"
	h := newRH(t)
	h.online("ann@x")

	// sendMessageLivechat with a fresh rid starts the room under it.
	h.visitor("tok-ddp", "Dee")
	c := dialDDP(t, h.srv.URL, "/websocket")
	c.connect()
	res := c.ok("sendMessageLivechat", map[string]any{"_id": "m1", "rid": ddpRID, "msg": "hello", "token": "tok-ddp"}).(map[string]any)
	if res["rid"] != ddpRID || res["newRoom"] != true {
		t.Fatalf("sendMessageLivechat: %v", res)
	}
	subID := c.mustSub(streamRoomMessages, ddpRID, "tok-ddp")
	_ = subID
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-ddp", nil, nil)["room"].(map[string]any)
	if room["_id"] != ddpRID {
		t.Errorf("GET livechat/room _id = %v, want %s", room["_id"], ddpRID)
	}
	cfg := h.ok("GET", "/api/v1/livechat/config?token=tok-ddp", nil, nil)["config"].(map[string]any)
	if r, _ := cfg["room"].(map[string]any); r["_id"] != ddpRID {
		t.Errorf("config room = %v", cfg["room"])
	}
	msg := h.send("tok-ddp", ddpRID, "second")
	if msg["rid"] != ddpRID {
		t.Errorf("livechat/message rid = %v", msg["rid"])
	}
	f := c.changed(streamRoomMessages)
	ev, args := ddpStreamArgs(t, f)
	if ev != ddpRID || args[0].(map[string]any)["rid"] != ddpRID {
		t.Errorf("stream frame %s", f.raw)
	}
	for _, m := range h.history("tok-ddp", ddpRID) {
		if m["rid"] != ddpRID {
			t.Errorf("history message rid %v", m["rid"])
		}
	}
	if got := h.ok("GET", "/api/v1/livechat/agent.info/"+ddpRID+"/tok-ddp", nil, nil); got["agent"] == nil {
		t.Errorf("agent.info: %v", got)
	}
	hdr := h.login("ann", "ann-secret")
	rooms := h.ok("GET", "/api/v1/livechat/visitor/tok-ddp/room", nil, hdr)["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["_id"] != ddpRID {
		t.Errorf("visitor rooms %v", rooms)
	}
	closed := h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": ddpRID, "token": "tok-ddp"}, nil)
	if closed["rid"] != ddpRID {
		t.Errorf("room.close %v", closed)
	}

	// GET livechat/room?rid= with an unused id starts the room under it.
	h.visitor("tok-rest", "Rae")
	got := h.ok("GET", "/api/v1/livechat/room?token=tok-rest&rid="+restRID, nil, nil)
	if got["newRoom"] != true || got["room"].(map[string]any)["_id"] != restRID {
		t.Fatalf("GET livechat/room?rid: %v", got)
	}
	again := h.ok("GET", "/api/v1/livechat/room?token=tok-rest&rid="+restRID, nil, nil)
	if again["newRoom"] != false || again["room"].(map[string]any)["_id"] != restRID {
		t.Errorf("again: %v", again)
	}
	// Another visitor cannot take or read either id.
	h.visitor("tok-other", "Oz")
	code, m, _ := h.do("GET", "/api/v1/livechat/room?token=tok-other&rid="+restRID, nil, nil)
	wantErr(t, "other visitor's rid", code, m, 400, errA("invalid-room"))
	code, m, _ = h.do("GET", "/api/v1/livechat/messages.history/"+ddpRID+"?token=tok-other", nil, nil)
	if code != 400 || m["success"] != false {
		t.Errorf("other visitor's history: %d %v", code, m)
	}
	// A visitor with an open room cannot start a second one by naming a
	// new id (one open room per visitor).
	code, m, _ = h.do("GET", "/api/v1/livechat/room?token=tok-rest&rid=AnotherFreshId123", nil, nil)
	wantErr(t, "second room", code, m, 400, errA("invalid-room"))
}

// TestRoomCachesBounded: the caches of client room ids and widget marks
// hold at most their size, however many conversations the node serves,
// and a conversation that fell out still answers its client-chosen id and
// widget mark (read back from the store).
func TestRoomCachesBounded(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.s.rest.roomIDs, h.s.rest.widgetRooms = newRoomCaches(2)
	rids := []string{"BoundedRoomAaaaa1", "BoundedRoomBbbbb2", "BoundedRoomCcccc3"}
	for i, rid := range rids {
		tok := "tok-bounded-" + rid
		h.visitor(tok, "V")
		got := h.ok("GET", "/api/v1/livechat/room?token="+tok+"&rid="+rid, nil, map[string]string{"Cookie": "rc_is_widget=t"})
		if got["room"].(map[string]any)["_id"] != rid {
			t.Fatalf("room %d: %v", i, got)
		}
	}
	if n := h.s.rest.roomIDs.Len(); n > 2 {
		t.Errorf("roomIDs holds %d entries, bound 2", n)
	}
	if n := h.s.rest.widgetRooms.Len(); n > 2 {
		t.Errorf("widgetRooms holds %d entries, bound 2", n)
	}
	// The first room was evicted; its answers come back from the store.
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-bounded-"+rids[0], nil, nil)["room"].(map[string]any)
	if room["_id"] != rids[0] {
		t.Errorf("evicted room _id = %v, want %s", room["_id"], rids[0])
	}
	if src, _ := room["source"].(map[string]any); src["type"] != "widget" {
		t.Errorf("evicted room source = %v, want widget", room["source"])
	}
}
