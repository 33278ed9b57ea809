package agentrtm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"chatgate/core/model"
)

func req(rid, action string, payload any) []byte {
	m := map[string]any{"request_id": rid, "action": action}
	if payload != nil {
		m["payload"] = payload
	}
	b, _ := json.Marshal(m)
	return b
}

func TestErrors(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")

	// Tom's chat is alice's and active; Una's is alice's and closed; Ola's
	// was moved to bob.
	tom, tomConv := h.startChat(t, "Tom", "")
	una, unaConv := h.startChat(t, "Una", "")
	if _, err := h.d.Close(ctx, unaConv.ID, model.Author{Kind: model.AuthorVisitor, ID: string(una.ID)}, "", ""); err != nil {
		t.Fatal(err)
	}
	ola, olaConv := h.startChat(t, "Ola", "")
	if err := h.d.Assign(ctx, olaConv.ID, bob, model.System, ""); err != nil {
		t.Fatal(err)
	}
	if tomConv.Agent != alice || unaConv.Agent != alice {
		t.Fatalf("setup: conversations not routed to alice: %+v %+v", tomConv, unaConv)
	}
	msg := func(text string) map[string]any { return map[string]any{"type": "message", "text": text} }

	cases := []struct {
		name  string
		fresh bool // on a new, not logged-in connection
		frame []byte
		want  string // error type, "" for success
		rid   string // expected request_id of the response
	}{
		{"rtm before login", true, req("1", "list_chats", nil), "authentication", "1"},
		{"send before login", true, req("2", "send_event", map[string]any{"chat_id": tom.ID, "event": msg("x")}), "authentication", "2"},
		{"ping before login", true, req("3", "ping", nil), "", "3"},
		{"bad token", true, req("4", "login", map[string]any{"token": "Bearer nope"}), "authentication", "4"},
		{"token without bearer", true, req("5", "login", map[string]any{"token": "tok-alice"}), "authentication", "5"},
		{"token wrong type", true, req("6", "login", map[string]any{"token": 5}), "validation", "6"},
		{"login without token", true, req("7", "login", map[string]any{}), "validation", "7"},
		{"unknown action before login", true, req("8", "fly", nil), "validation", "8"},
		{"unknown action", false, req("9", "fly_to_the_moon", nil), "validation", "9"},
		{"malformed json", false, []byte(`{"request_id":"10","action":`), "validation", ""},
		{"not an object", false, []byte(`[1,2,3]`), "validation", ""},
		{"empty frame", false, []byte(``), "validation", ""},
		{"numeric request_id", false, []byte(`{"request_id":11,"action":"ping"}`), "validation", ""},
		{"payload not an object", false, []byte(`{"request_id":"12","action":"ping","payload":"x"}`), "validation", "12"},
		{"missing action", false, []byte(`{"request_id":"13"}`), "validation", "13"},
		{"lower version", false, []byte(`{"request_id":"14","action":"ping","version":"3.2"}`), "unsupported_version", "14"},
		{"higher version ok", false, []byte(`{"request_id":"15","action":"ping","version":"3.6"}`), "", "15"},
		{"limit wrong type", false, req("16", "list_chats", map[string]any{"limit": "ten"}), "validation", "16"},
		{"limit too big", false, req("17", "list_chats", map[string]any{"limit": 1000}), "validation", "17"},
		{"bad sort order", false, req("18", "list_chats", map[string]any{"sort_order": "sideways"}), "validation", "18"},
		{"bad page id", false, req("19", "list_chats", map[string]any{"page_id": "!!not-base64"}), "validation", "19"},
		{"chat_id wrong type", false, req("20", "get_chat", map[string]any{"chat_id": 7}), "validation", "20"},
		{"chat_id missing", false, req("21", "get_chat", map[string]any{}), "validation", "21"},
		{"event wrong type", false, req("22", "send_event", map[string]any{"chat_id": tom.ID, "event": "hi"}), "validation", "22"},
		{"status wrong type", false, req("23", "set_routing_status", map[string]any{"status": true}), "validation", "23"},
		{"unknown status", false, req("24", "set_routing_status", map[string]any{"status": "dancing"}), "validation", "24"},
		{"status of another agent", false, req("25", "set_routing_status", map[string]any{"status": "accepting_chats", "agent_id": bob}), "authorization", "25"},
		{"unknown chat get", false, req("26", "get_chat", map[string]any{"chat_id": "NOPE"}), "not_found", "26"},
		{"unknown chat send", false, req("27", "send_event", map[string]any{"chat_id": "NOPE", "event": msg("x")}), "not_found", "27"},
		{"unknown chat deactivate", false, req("28", "deactivate_chat", map[string]any{"id": "NOPE"}), "not_found", "28"},
		{"other agent's chat get", false, req("29", "get_chat", map[string]any{"chat_id": ola.ID}), "not_found", "29"},
		{"other agent's chat send", false, req("30", "send_event", map[string]any{"chat_id": ola.ID, "event": msg("x")}), "not_found", "30"},
		{"thread of another chat", false, req("31", "get_chat", map[string]any{"chat_id": tom.ID, "thread_id": unaConv.ID}), "not_found", "31"},
		{"inactive chat send", false, req("32", "send_event", map[string]any{"chat_id": una.ID, "event": msg("x")}), "chat_inactive", "32"},
		{"inactive chat deactivate", false, req("33", "deactivate_chat", map[string]any{"id": una.ID}), "chat_inactive", "33"},
		{"oversize frame", false, req("34", "send_event", map[string]any{"chat_id": tom.ID, "event": msg(strings.Repeat("x", 9<<10))}), "entity_too_large", "34"},
		{"text over limit", false, req("35", "send_event", map[string]any{"chat_id": tom.ID, "event": msg(strings.Repeat("y", 300))}), "validation", "35"},
		{"empty text", false, req("36", "send_event", map[string]any{"chat_id": tom.ID, "event": msg("  ")}), "validation", "36"},
		{"unsupported event type", false, req("37", "send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "file", "url": "x"}}), "validation", "37"},
		{"bad visibility", false, req("38", "send_event", map[string]any{"chat_id": tom.ID, "event": map[string]any{"type": "message", "text": "x", "visibility": "nobody"}}), "validation", "38"},
		{"event missing", false, req("39", "send_event", map[string]any{"chat_id": tom.ID}), "validation", "39"},
		{"second login", false, req("40", "login", map[string]any{"token": "Bearer tok-alice"}), "validation", "40"},
		{"session alive after errors", false, req("41", "ping", map[string]any{}), "", "41"},
	}
	// One goroutine, no subtests: the shared connection's helpers fail the
	// test that owns it.
	for _, tc := range cases {
		c := a
		if tc.fresh {
			c = h.dial(t, "/v3.5/agent/rtm/ws")
		}
		c.SendRaw(tc.frame)
		f := c.Await(func(f frame) bool { return f.Type == "response" && f.RID() == tc.rid })
		if f.RequestID == nil {
			t.Errorf("%s: response has no request_id field", tc.name)
		}
		switch {
		case tc.want == "" && !f.Success:
			t.Errorf("%s: want success, got %s", tc.name, f.Payload)
		case tc.want != "" && (f.Success || f.ErrType() != tc.want):
			t.Errorf("%s: want %s error, got success=%v payload %s", tc.name, tc.want, f.Success, f.Payload)
		}
		if !f.Success {
			var b errorBody
			mustUnmarshal(t, f.Payload, &b)
			if b.Error.Message == "" {
				t.Errorf("%s: error without message: %s", tc.name, f.Payload)
			}
		}
	}
}

// A frame above the hard cap is not read at all: the socket is closed
// with 1009.
func TestHardFrameCap(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t, "/v3.5/agent/rtm/ws")
	c.SendRaw(req("big", "ping", map[string]any{"junk": strings.Repeat("z", hardFrameCap+1)}))
	var ce *websocket.CloseError
	if err := c.CloseErr(); !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close = %v, want 1009", err)
	}
}

// TestHardFrameCapLoggedIn (issue 16, also seen): the same after login,
// where frames go through the request pipeline: 1009, not an abrupt 1006.
func TestHardFrameCapLoggedIn(t *testing.T) {
	for _, size := range []int{hardFrameCap + 1, 4 * hardFrameCap} {
		h := newHarness(t, nil)
		c := h.dial(t, "/v3.5/agent/rtm/ws")
		c.login("tok-alice")
		_ = c.TrySendRaw(req("big", "ping", map[string]any{"junk": strings.Repeat("z", size)}))
		var ce *websocket.CloseError
		if err := c.CloseErr(); !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("%d bytes: close = %v, want 1009", size, err)
		}
	}
}
