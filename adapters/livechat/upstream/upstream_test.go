package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/relay"
)

func newTestConnector(t *testing.T, base, tokenURL string) *Connector {
	t.Helper()
	c, err := New(Config{Name: "lc", URL: base, TokenURL: tokenURL, OrganizationID: "org-1",
		AgentToken: "agent-secret", ClientID: "client-1", Department: "2", Timeout: 2 * time.Second}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewBuildsTheRTMURLAndChecksConfig(t *testing.T) {
	c := newTestConnector(t, "https://api.example.com/", "https://accounts.example.com/v2/customer/token")
	if want := "wss://api.example.com/v3.5/customer/rtm/ws?organization_id=org-1"; c.rtmURL != want {
		t.Errorf("rtm url %q, want %q", c.rtmURL, want)
	}
	if c.group == nil || *c.group != 2 {
		t.Errorf("group %v, want 2", c.group)
	}
	bad := []Config{
		{Name: "lc", URL: "ftp://x", TokenURL: "http://t/", OrganizationID: "o", AgentToken: "a"},
		{Name: "lc", URL: "http://x", TokenURL: "", OrganizationID: "o", AgentToken: "a"},
		{Name: "lc", URL: "http://x", TokenURL: "http://t/", AgentToken: "a"},
		{Name: "lc", URL: "http://x", TokenURL: "http://t/", OrganizationID: "o"},
		{Name: "lc", URL: "http://x", TokenURL: "http://t/", OrganizationID: "o", AgentToken: "a", Department: "sales"},
	}
	for i, cfg := range bad {
		if _, err := New(cfg, zerolog.Nop()); err == nil {
			t.Errorf("config %d accepted: %+v", i, cfg)
		}
	}
}

func TestRoomIDRoundTrip(t *testing.T) {
	chat, thread, ok := splitRoom(roomID("PJ0MRSHTDG", "K600PKZON8"))
	if !ok || chat != "PJ0MRSHTDG" || thread != "K600PKZON8" {
		t.Fatalf("split: %q %q %v", chat, thread, ok)
	}
	for _, bad := range []string{"", "chat", "chat/", "/thread"} {
		if _, _, ok := splitRoom(bad); ok {
			t.Errorf("%q split", bad)
		}
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{errors.New("dial: connection refused"), true},
		{&wire.Error{Type: wire.ServiceUnavailable}, true},
		{&wire.Error{Type: wire.Authentication}, true},
		{&wire.Error{Type: "groups_offline"}, true},
		{&wire.Error{Type: wire.Validation}, false},
		{&wire.Error{Type: wire.CustomerBanned}, false},
		{fmt.Errorf("send_event: %w", &wire.Error{Type: wire.NotFound}), false},
		{&tokenError{Status: 503}, true},
		{&tokenError{Status: 401, Kind: "identity_exception", Text: "invalid agent token"}, true},
		{&tokenError{Status: 400, Kind: "oauth_exception", Text: "invalid_request"}, false},
	}
	for _, tc := range cases {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !isActiveChat(&wire.Error{Type: wire.Validation, Message: "Chat is already active"}) ||
		isActiveChat(&wire.Error{Type: wire.Validation, Message: "Wrong format of request"}) {
		t.Error("isActiveChat")
	}
}

// TestRequestToken: the agent_token grant as §2.12 has it, the agent token
// only in the Authorization header, entity_id when given, refusals parsed.
func TestRequestToken(t *testing.T) {
	var got map[string]any
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		got = nil
		_ = json.NewDecoder(r.Body).Decode(&got)
		if got["entity_id"] == "gone" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"identity_exception":"entity not found"}`))
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"dal:secret","entity_id":"cust-1","expires_in":28800,"token_type":"Bearer"}`))
	}))
	defer srv.Close()
	c := newTestConnector(t, srv.URL, srv.URL+"/v2/customer/token")
	ctx := context.Background()

	tok, err := c.requestToken(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.access != "dal:secret" || tok.entity != "cust-1" || time.Until(tok.expires) < 7*time.Hour {
		t.Errorf("token %+v", tok)
	}
	if auth != "Bearer agent-secret" || got["grant_type"] != "agent_token" || got["organization_id"] != "org-1" ||
		got["client_id"] != "client-1" || got["entity_id"] != nil {
		t.Errorf("request: auth %q body %v", auth, got)
	}
	if _, err := c.requestToken(ctx, "cust-1"); err != nil || got["entity_id"] != "cust-1" {
		t.Errorf("re-issue: %v, body %v", err, got)
	}
	_, err = c.requestToken(ctx, "gone")
	var te *tokenError
	if !errors.As(err, &te) || te.Status != 401 || te.Kind != "identity_exception" || !strings.Contains(te.Text, "entity") {
		t.Errorf("refusal: %v", err)
	}
	if strings.Contains(err.Error(), "agent-secret") {
		t.Error("the agent token leaked into an error")
	}
	if err := c.probe(ctx); err != nil {
		t.Errorf("probe: %v", err)
	}
	srv.Close()
	if err := c.probe(ctx); err == nil {
		t.Error("probe of a closed endpoint succeeded")
	}
}

// TestRTMCall: requests are matched to responses by request_id (pushes in
// between are not answers), refusals come back as *wire.Error, and a dead
// socket fails the calls waiting on it.
func TestRTMCall(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			var req struct {
				RequestID string         `json:"request_id"`
				Action    string         `json:"action"`
				Payload   map[string]any `json:"payload"`
			}
			if ws.ReadJSON(&req) != nil {
				return
			}
			_ = ws.WriteJSON(map[string]any{"type": "push", "action": "incoming_event", "request_id": "other",
				"payload": map[string]any{}})
			switch req.Action {
			case "send_event":
				_ = ws.WriteJSON(map[string]any{"type": "response", "action": req.Action, "request_id": req.RequestID,
					"success": true, "payload": map[string]any{"event_id": "T_1"}})
			case "deactivate_chat":
				_ = ws.WriteJSON(map[string]any{"type": "response", "action": req.Action, "request_id": req.RequestID,
					"success": false, "payload": map[string]any{"error": map[string]any{"type": "chat_inactive", "message": "Chat is inactive"}}})
			case "hang_up":
				return
			}
		}
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	conn := &rtm{ws: ws, wait: 2 * time.Second, pending: make(map[string]chan rtmFrame), dead: make(chan struct{})}
	go func() {
		for {
			var f rtmFrame
			if err := ws.ReadJSON(&f); err != nil {
				conn.fail(err)
				return
			}
			if f.Type == "response" {
				conn.answer(f)
			}
		}
	}()
	ctx := context.Background()
	var res struct {
		EventID string `json:"event_id"`
	}
	if err := conn.call(ctx, "send_event", map[string]any{"chat_id": "C"}, &res); err != nil || res.EventID != "T_1" {
		t.Fatalf("send_event: %v %+v", err, res)
	}
	err = conn.call(ctx, "deactivate_chat", map[string]any{"id": "C"}, nil)
	if !isInactive(err) {
		t.Fatalf("deactivate_chat: %v", err)
	}
	if err := conn.call(ctx, "hang_up", nil, nil); err == nil {
		t.Fatal("a call on a socket the server closed succeeded")
	}
	if err := conn.call(ctx, "send_event", nil, nil); err == nil {
		t.Fatal("a call after the socket died succeeded")
	}
}

// TestStatusWithoutFollowers: with nothing followed the connector is as
// healthy as its token endpoint.
func TestStatusWithoutFollowers(t *testing.T) {
	c := newTestConnector(t, "http://127.0.0.1:1", "http://127.0.0.1:1/token")
	if c.Status().Connected {
		t.Error("connected before any probe")
	}
	c.mu.Lock()
	c.tokenOK = true
	c.mu.Unlock()
	if st := c.Status(); !st.Connected {
		t.Errorf("status %+v", st)
	}
	var _ relay.Connector = c
}
