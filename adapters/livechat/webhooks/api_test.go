package webhooks

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

type apiError struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func wantError(t *testing.T, status int, body []byte, wantStatus int, wantType, wantMsg string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if status != wantStatus || e.Error.Type != wantType || !strings.Contains(e.Error.Message, wantMsg) {
		t.Errorf("got %d %s %q, want %d %s containing %q", status, e.Error.Type, e.Error.Message, wantStatus, wantType, wantMsg)
	}
}

func TestRegisterValidation(t *testing.T) {
	g := newGateway(t, gwOptions{})
	valid := func() map[string]any {
		return map[string]any{"action": "incoming_event", "secret_key": "k", "url": "https://hooks.example.com/lc",
			"owner_client_id": ownerID, "type": "license"}
	}
	with := func(k string, v any) map[string]any {
		b := valid()
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	cases := []struct {
		name   string
		body   any
		status int
		typ    string
		msg    string
	}{
		{"malformed JSON", `{"action":`, 400, "validation", "invalid JSON"},
		{"not an object", `[1,2]`, 400, "validation", "Wrong format"},
		{"action missing", with("action", nil), 400, "validation", "action is required"},
		{"action of wrong type", with("action", 5), 400, "validation", "action must be"},
		{"action unknown", with("action", "incoming_pizza"), 400, "validation", "not a webhook action"},
		{"action not supported", with("action", "chat_transferred"), 400, "validation", "not supported"},
		{"secret_key missing", with("secret_key", nil), 400, "validation", "secret_key is required"},
		{"secret_key too long", with("secret_key", strings.Repeat("k", 2000)), 400, "validation", "secret_key is too long"},
		{"url missing", with("url", nil), 400, "validation", "url is required"},
		{"url too long", with("url", "https://x.example.com/"+strings.Repeat("a", 500)), 400, "validation", "longer than 500"},
		{"url relative", with("url", "/hooks"), 400, "validation", "absolute"},
		{"url without host", with("url", "https:///path"), 400, "validation", "absolute"},
		{"url not parseable", with("url", "https://exa mple.com/%zz"), 400, "validation", "absolute"},
		{"url ftp", with("url", "ftp://example.com/x"), 400, "validation", "https"},
		{"owner_client_id missing", with("owner_client_id", nil), 400, "validation", "owner_client_id is required"},
		{"type missing", with("type", nil), 400, "validation", "type is required"},
		{"type unknown", with("type", "global"), 400, "validation", "license or bot"},
		{"type bot", with("type", "bot"), 400, "validation", "bot is not supported"},
		{"additional_data unknown", with("additional_data", []string{"access"}), 400, "validation", "additional_data"},
		{"filters not an object", with("filters", "x"), 400, "validation", "filters must be an object"},
		{"filter unknown", with("filters", map[string]any{"source_type": []string{"system"}}), 400, "validation", "filter source_type is not supported"},
		{"author_type bad", with("filters", map[string]any{"author_type": "robot"}), 400, "validation", "customer or agent"},
		{"author_type on incoming_chat", func() map[string]any {
			b := with("filters", map[string]any{"author_type": "agent"})
			b["action"] = "incoming_chat"
			return b
		}(), 400, "validation", "only to incoming_event"},
		{"my_bots", with("filters", map[string]any{"chat_presence": map[string]any{"my_bots": true}}), 400, "validation", "my_bots"},
		{"user_ids both", with("filters", map[string]any{"chat_presence": map[string]any{"user_ids": map[string]any{
			"values": []string{"a"}, "exclude_values": []string{"b"}}}}), 400, "validation", "exactly one"},
		{"user_ids neither", with("filters", map[string]any{"chat_presence": map[string]any{"user_ids": map[string]any{}}}),
			400, "validation", "exactly one"},
		{"filter of wrong type", with("filters", map[string]any{"only_my_chats": "yes"}), 400, "validation", "only_my_chats"},
		{"body too large", `{"description":"` + strings.Repeat("d", 70<<10) + `"}`, 413, "entity_too_large", "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := g.call("3.5", "register_webhook", annToken, tc.body)
			wantError(t, status, b, tc.status, tc.typ, tc.msg)
		})
	}
	if n := len(g.svc.Webhooks()); n != 0 {
		t.Fatalf("%d webhooks registered by invalid requests", n)
	}

	// Valid forms are accepted, on every version path.
	for i, body := range []map[string]any{
		valid(),
		with("url", "http://127.0.0.1:9/hook"), // loopback http: this gateway allows it (tests)
		with("filters", map[string]any{"author_type": "customer", "only_my_chats": true,
			"chat_presence": map[string]any{"user_ids": map[string]any{"exclude_values": []string{"x"}}}}),
	} {
		body["additional_data"] = []string{"chat_properties", "chat_presence_user_ids", "chat_properties"}
		status, b := g.call(Versions[i], "register_webhook", annToken, body)
		if status != 200 || !strings.Contains(string(b), `"id":"`) {
			t.Errorf("valid registration %d = %d %s", i, status, b)
		}
	}
	// A fourth webhook for one action and client is over LiveChat's limit.
	status, b := g.call("3.5", "register_webhook", annToken, valid())
	wantError(t, status, b, 400, "limit_reached", "3 webhooks")
	other := valid()
	other["owner_client_id"] = "client-2"
	if status, b := g.call("3.5", "register_webhook", annToken, other); status != 200 {
		t.Errorf("another client's webhook = %d %s", status, b)
	}
	if ws := g.svc.Webhooks(); len(ws) != 4 || len(ws[0].AdditionalData) != 2 {
		t.Errorf("registered = %+v", ws)
	}
}

// TestReceiverSwitches: webhooks.allow_http and
// webhooks.allow_private_networks, each fail-closed, refusals naming the
// switch (issue 11 item 4, issue 16 Medium 4).
func TestReceiverSwitches(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		allowHTTP, allowPriv bool
		url                  string
		want                 string // "" = registered; else part of the validation message
	}{
		{"http refused by default", false, false, "http://hooks.example.com/h", "webhooks.allow_http"},
		{"http allowed", true, false, "http://hooks.example.com/h", ""},
		{"loopback http needs both", true, false, "http://127.0.0.1:9/h", "webhooks.allow_private_networks"},
		{"loopback http without allow_http", false, true, "http://127.0.0.1:9/h", "webhooks.allow_http"},
		{"loopback http with both", true, true, "http://127.0.0.1:9/h", ""},
		{"localhost https", false, false, "https://localhost/h", "webhooks.allow_private_networks"},
		{"metadata", false, false, "https://169.254.169.254/latest", "webhooks.allow_private_networks"},
		{"private v4", false, false, "https://10.1.2.3/h", "webhooks.allow_private_networks"},
		{"mapped v6 loopback", false, false, "https://[::ffff:127.0.0.1]/h", "webhooks.allow_private_networks"},
		{"unique local v6", false, false, "https://[fd00::1]/h", "webhooks.allow_private_networks"},
		{"private allowed", false, true, "https://10.1.2.3/h", ""},
		{"public https", false, false, "https://hooks.example.com/h", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, gwOptions{strict: true, cfg: Config{AllowHTTP: tc.allowHTTP, AllowPrivateNetworks: tc.allowPriv}})
			status, b := g.call("3.5", "register_webhook", annToken, map[string]any{"action": "incoming_event", "secret_key": "k",
				"url": tc.url, "owner_client_id": ownerID, "type": "license"})
			if tc.want == "" {
				if status != 200 {
					t.Fatalf("want registered, got %d %s", status, b)
				}
				return
			}
			wantError(t, status, b, 400, "validation", tc.want)
		})
	}
}

func TestAuthentication(t *testing.T) {
	g := newGateway(t, gwOptions{})
	body := map[string]any{"owner_client_id": ownerID}
	for _, tc := range []struct {
		name, header string
	}{
		{"no header", ""},
		{"unknown token", "Bearer nope"},
		{"no scheme", annToken},
		{"basic", "Basic " + annToken},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, action := range []string{"register_webhook", "list_webhooks", "unregister_webhook", "list_webhook_failures"} {
				req, _ := http.NewRequest(http.MethodPost, g.api.URL+"/v3.5/configuration/action/"+action, strings.NewReader(`{}`))
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				status, b := do(t, req)
				wantError(t, status, b, 401, "authentication", "")
			}
			req, _ := http.NewRequest(http.MethodGet, g.api.URL+"/v3.5/configuration/action/list_webhook_failures", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			status, b := do(t, req)
			wantError(t, status, b, 401, "authentication", "")
		})
	}
	// A valid agent token of a non-administrator (issue 16, High 2): every
	// action that needs a token is refused, before anything is read.
	for _, action := range []string{"register_webhook", "list_webhooks", "unregister_webhook", "list_webhook_failures",
		"register_property", "unregister_property", "list_properties"} {
		status, b := g.call("3.5", action, benToken, map[string]any{"owner_client_id": ownerID})
		wantError(t, status, b, 403, "authorization", "administrators")
	}
	req, _ := http.NewRequest(http.MethodGet, g.api.URL+"/v3.5/configuration/action/list_webhook_failures", nil)
	req.Header.Set("Authorization", "Bearer "+benToken)
	status, b := do(t, req)
	wantError(t, status, b, 403, "authorization", "administrators")
	if status, b := g.call("3.5", "list_webhooks", annToken, body); status != 200 || string(b) != "[]" {
		t.Errorf("list_webhooks with a token = %d %s", status, b)
	}
	// list_webhook_names needs no token (§3.1).
	status, b = g.call("3.6", "list_webhook_names", "", nil)
	if status != 200 || !strings.Contains(string(b), `"action":"incoming_chat"`) {
		t.Errorf("list_webhook_names = %d %s", status, b)
	}
	status, b = g.call("3.5", "set_webhooks_mood", annToken, nil)
	wantError(t, status, b, 404, "not_found", "Unsupported action")
}

func TestRegisterListUnregister(t *testing.T) {
	g := newGateway(t, gwOptions{})
	a1 := g.register(IncomingChat, "https://a.example.com/1", map[string]any{"description": "first"})
	a2 := g.register(IncomingEvent, "https://a.example.com/2", map[string]any{"filters": map[string]any{"author_type": "agent"}})
	status, b := g.call("3.5", "register_webhook", annToken, map[string]any{"action": "incoming_event", "secret_key": "x",
		"url": "https://b.example.com", "owner_client_id": "client-b", "type": "license"})
	if status != 200 {
		t.Fatalf("register for client-b = %d %s", status, b)
	}

	list := func(owner string) []map[string]any {
		t.Helper()
		status, b := g.call("3.4", "list_webhooks", annToken, map[string]any{"owner_client_id": owner})
		if status != 200 {
			t.Fatalf("list_webhooks = %d %s", status, b)
		}
		if strings.Contains(string(b), "secret") {
			t.Errorf("list_webhooks shows the secret: %s", b)
		}
		var out []map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := list(ownerID)
	if len(got) != 2 || got[0]["id"] != a1 || got[0]["description"] != "first" || got[0]["type"] != "license" ||
		got[0]["url"] != "https://a.example.com/1" || got[1]["id"] != a2 {
		t.Fatalf("list_webhooks = %v", got)
	}
	if f, _ := got[1]["filters"].(map[string]any); f["author_type"] != "agent" {
		t.Errorf("filters = %v", got[1]["filters"])
	}
	status, b = g.call("3.5", "list_webhooks", annToken, map[string]any{})
	wantError(t, status, b, 400, "validation", "owner_client_id is required")

	status, b = g.call("3.5", "unregister_webhook", annToken, map[string]any{"id": a1, "owner_client_id": "client-b"})
	wantError(t, status, b, 404, "not_found", "")
	status, b = g.call("3.5", "unregister_webhook", annToken, map[string]any{"owner_client_id": ownerID})
	wantError(t, status, b, 400, "validation", "id is required")
	if status, b := g.call("3.6", "unregister_webhook", annToken, map[string]any{"id": a1, "owner_client_id": ownerID}); status != 200 || string(b) != "{}" {
		t.Fatalf("unregister_webhook = %d %s", status, b)
	}
	status, b = g.call("3.5", "unregister_webhook", annToken, map[string]any{"id": a1, "owner_client_id": ownerID})
	wantError(t, status, b, 404, "not_found", "")
	if got := list(ownerID); len(got) != 1 || got[0]["id"] != a2 {
		t.Fatalf("after unregister: %v", got)
	}

	// Registrations are durable: a service loading the same store sees them.
	s2, err := New(g.st, Config{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := s2.Webhooks()
	if len(ws) != 2 || ws[0].ID != a2 || ws[0].SecretKey != secretKey || ws[0].CreatedBy != ann.ID {
		t.Fatalf("reloaded webhooks = %+v", ws)
	}
}

// TestConfigToken (issue 16 item 2, "or a separate configuration token"):
// webhooks.config_token opens every Configuration API action; a token
// that differs in one character, or is a prefix of it, does not; the
// token is not written to the log. (That it opens nothing outside the
// Configuration API: TestAuthorizationMatrix's config-token rows.)
func TestConfigToken(t *testing.T) {
	const tok = "cfg-0123456789abcdef0123456789abcdef"
	var logBuf syncBuf
	g := newGateway(t, gwOptions{cfg: Config{ConfigToken: tok}, log: &logBuf})
	g.svc.cfg.Properties = g.d.Properties()
	body := map[string]any{"owner_client_id": ownerID}
	for _, action := range []string{"list_webhooks", "list_properties"} {
		if status, b := g.call("3.5", action, tok, body); status != 200 {
			t.Errorf("%s with the configuration token = %d %s", action, status, b)
		}
	}
	status, b := g.call("3.5", "register_property", tok, map[string]any{"owner_client_id": ownerID, "name": "p", "type": "string",
		"access": map[string]any{"chat": map[string]any{"agent": []string{"read"}}}})
	if status != 200 {
		t.Errorf("register_property with the configuration token = %d %s", status, b)
	}
	for _, bad := range []string{tok[:len(tok)-1] + "X", tok[:len(tok)-1], tok + "0"} {
		status, b := g.call("3.5", "list_webhooks", bad, body)
		wantError(t, status, b, 401, "authentication", "")
	}
	// Without the setting, the same token is just unknown.
	g2 := newGateway(t, gwOptions{})
	status, b = g2.call("3.5", "list_webhooks", tok, body)
	wantError(t, status, b, 401, "authentication", "")
	if strings.Contains(logBuf.String(), tok) {
		t.Errorf("configuration token logged:\n%s", logBuf.String())
	}
}
