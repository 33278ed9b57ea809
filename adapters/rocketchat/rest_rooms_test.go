package rocketchat

import (
	"context"
	"net/url"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/store"
)

// TestAgentReadsRoomsOfOtherSurfaces: a conversation started on another
// surface (a LiveChat v2 visitor: no Rocket.Chat token) is listed by
// livechat/rooms and read through chat.syncMessages by an agent who may
// read it, and by nobody else.
func TestAgentReadsRoomsOfOtherSurfaces(t *testing.T) {
	h := newRH(t)
	ctx := context.Background()
	v, err := h.d.EnsureVisitor(ctx, store.MapKey{System: "livechat.v2", Tenant: "1", Kind: "visitor", Foreign: "v2-visitor"}, model.Visitor{Name: "Vic"})
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := h.d.Start(ctx, desk.StartRequest{Visitor: v.ID, Department: "sales", Origin: "livechat.v2",
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: "Vic"}})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
	for _, text := range []string{"hello from v2", "second"} {
		if _, _, err := h.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: "Vic"},
			Draft: desk.Draft{Text: text}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := h.d.Post(ctx, desk.PostRequest{Conv: conv.ID, Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)},
		Draft: desk.Draft{Text: "internal", Visibility: model.VisibleAgents}}); err != nil {
		t.Fatal(err)
	}
	bob := h.login("bob", "bob-secret") // serves sales
	ann := h.login("ann", "ann-secret") // serves sales too
	rid := string(conv.ID)

	rooms := h.ok("GET", "/api/v1/livechat/rooms?open=true", nil, bob)
	list := rooms["rooms"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["_id"] != rid || rooms["total"] != float64(1) {
		t.Fatalf("rooms %v", rooms)
	}
	sync := h.ok("GET", "/api/v1/chat.syncMessages?"+url.Values{"roomId": {rid}, "lastUpdate": {before}}.Encode(), nil, ann)
	upd := sync["result"].(map[string]any)["updated"].([]any)
	var texts []string
	for _, m := range upd {
		if msg := m.(map[string]any); msg["t"] == nil {
			texts = append(texts, msg["msg"].(string))
		}
	}
	if len(texts) != 3 || texts[0] != "hello from v2" || texts[2] != "internal" {
		t.Fatalf("synced messages %v (all: %v)", texts, upd)
	}

	cases := []struct {
		name, path string
		hdr        map[string]string
		code       int
	}{
		{"no credentials", "/api/v1/chat.syncMessages?roomId=" + rid + "&lastUpdate=" + before, nil, 401},
		{"wrong token", "/api/v1/livechat/rooms", map[string]string{"X-User-Id": "bob@x", "X-Auth-Token": "nope"}, 401},
		{"missing roomId", "/api/v1/chat.syncMessages?lastUpdate=" + before, bob, 400},
		{"missing lastUpdate", "/api/v1/chat.syncMessages?roomId=" + rid, bob, 400},
		{"bad lastUpdate", "/api/v1/chat.syncMessages?roomId=" + rid + "&lastUpdate=yesterday", bob, 400},
		{"unknown room", "/api/v1/chat.syncMessages?roomId=nope&lastUpdate=" + before, bob, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, m, _ := h.do("GET", tc.path, nil, tc.hdr); code != tc.code || m["success"] == true {
				t.Fatalf("got %d %v, want %d", code, m, tc.code)
			}
		})
	}
}

// TestAgentOfAnotherDepartmentCannotRead: rooms outside an agent's
// departments are neither listed nor readable.
func TestAgentOfAnotherDepartmentCannotRead(t *testing.T) {
	h := newRH(t)
	ctx := context.Background()
	v, err := h.d.EnsureVisitor(ctx, store.MapKey{System: "t", Tenant: "t", Kind: "visitor", Foreign: "x"}, model.Visitor{Name: "X"})
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := h.d.Start(ctx, desk.StartRequest{Visitor: v.ID, Department: "sup", Origin: "t",
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	bob := h.login("bob", "bob-secret") // sales only
	if rooms := h.ok("GET", "/api/v1/livechat/rooms", nil, bob); len(rooms["rooms"].([]any)) != 0 {
		t.Fatalf("bob lists a support room: %v", rooms)
	}
	code, m, _ := h.do("GET", "/api/v1/chat.syncMessages?roomId="+string(conv.ID)+"&lastUpdate=2000-01-01T00:00:00.000Z", nil, bob)
	if code != 403 || m["error"] != "unauthorized" {
		t.Fatalf("bob reads a support room: %d %v", code, m)
	}
}

// TestBannedVisitorRefused: a visitor banned through the LiveChat agent API
// gets a Rocket.Chat error (not a 500) when it sends.
func TestBannedVisitorRefused(t *testing.T) {
	h := newRH(t)
	h.online("cid@x")
	h.visitor("tok-ban", "Ban")
	rid := h.room("tok-ban")
	v, err := h.s.visitorByToken(context.Background(), "tok-ban")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Ban(context.Background(), v.ID, 1, model.Author{Kind: model.AuthorAgent, ID: "cid@x"}, ""); err != nil {
		t.Fatal(err)
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-ban", "rid": rid, "msg": "hi"}, nil)
	if code != 400 || m["error"] != "error-not-allowed" {
		t.Fatalf("banned send: %d %v", code, m)
	}
}
