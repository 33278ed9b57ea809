package rocketchat

import (
	"context"
	"encoding/json"
	"testing"
)

// TestCustomFieldRoutes: the configured definitions are listed by
// GET livechat/custom-fields (paging, text filter) and
// custom-fields/:_id, public ones reach livechat/config and
// livechat:getInitialData (Rocket.Chat EE's getLivechatCustomFields shape).
func TestCustomFieldRoutes(t *testing.T) {
	h := newRH(t)
	ann := h.login("ann", "ann-secret")
	m := h.ok("GET", "/api/v1/livechat/custom-fields", nil, ann)
	list := m["customFields"].([]any)
	if m["total"] != float64(len(testCustomFields)) || len(list) != len(testCustomFields) || list[0].(map[string]any)["_id"] != "customerId" {
		t.Errorf("custom-fields %v", m)
	}
	m = h.ok("GET", "/api/v1/livechat/custom-fields?text=ORD&count=5", nil, ann)
	if m["total"] != float64(1) || m["customFields"].([]any)[0].(map[string]any)["scope"] != "room" {
		t.Errorf("text filter %v", m)
	}
	m = h.ok("GET", "/api/v1/livechat/custom-fields?offset=1&count=2", nil, ann)
	if m["count"] != float64(2) || m["offset"] != float64(1) || m["customFields"].([]any)[0].(map[string]any)["_id"] != "k" {
		t.Errorf("paging %v", m)
	}
	want := map[string]any{"_id": "customerId", "label": "Customer ID", "scope": "visitor", "visibility": "visible",
		"regexp": "^[A-Z]-[0-9]+$", "searchable": false, "type": "input", "required": true, "defaultValue": "", "options": "", "public": true}
	if m = h.ok("GET", "/api/v1/livechat/custom-fields/customerId", nil, ann); !equalJSON(m["customField"], want) {
		t.Errorf("custom-fields/customerId %v", m)
	}
	if m = h.ok("GET", "/api/v1/livechat/custom-fields/nope", nil, ann); m["customField"] != nil {
		t.Errorf("unknown field %v", m)
	}
	public := []any{
		map[string]any{"_id": "customerId", "label": "Customer ID", "regexp": "^[A-Z]-[0-9]+$", "required": true, "type": "input", "defaultValue": ""},
		map[string]any{"_id": "plan", "label": "Plan", "regexp": "", "required": false, "type": "select", "defaultValue": "", "options": []any{"gold", "silver"}},
	}
	cfg := h.ok("GET", "/api/v1/livechat/config", nil, nil)["config"].(map[string]any)
	if !equalJSON(cfg["customFields"], public) {
		t.Errorf("config customFields %v", cfg["customFields"])
	}
	c := dialDDP(t, h.srv.URL, "/websocket")
	c.connect()
	if info := c.ok("livechat:getInitialData", "nobody").(map[string]any); !equalJSON(info["customFields"], public) {
		t.Errorf("getInitialData customFields %v", info["customFields"])
	}
}

// TestCustomFieldValues: only defined keys are accepted (invalid-custom-
// field), values must match the regexp (Rocket.Chat's
// Livechat.setCustomFields, checked); visitor-scope values land on the
// visitor, room-scope ones on the token's open room (its livechatData for
// Rocket.Chat agents, thread properties for LiveChat agents), and a
// room-scope value without an open room is Rocket.Chat's {success:false}.
func TestCustomFieldValues(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.visitor("tok-cf", "Cy")
	set := func(key, value string) (int, map[string]any) {
		code, m, _ := h.do("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-cf", "key": key, "value": value, "overwrite": true}, nil)
		return code, m
	}
	code, m := set("undefined", "x")
	wantErr(t, "undefined key", code, m, 400, errB("invalid-custom-field"))
	code, m = set("customerId", "abc")
	wantErr(t, "regexp", code, m, 400, map[string]any{"success": false, "error": "Invalid value for customerId field"})
	code, m = set("orderRef", "ORD-1")
	if code != 400 || !equalJSON(m, map[string]any{"success": false}) {
		t.Errorf("room field without a room: %d %v", code, m)
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/custom.fields", map[string]any{"token": "tok-cf", "customFields": []any{
		map[string]any{"key": "k", "value": "v", "overwrite": true}, map[string]any{"key": "nope", "value": "v", "overwrite": true}}}, nil)
	wantErr(t, "custom.fields with an undefined key", code, m, 400, errA("invalid-custom-field"))
	if v, _ := h.s.visitorByToken(context.Background(), "tok-cf"); v.Fields["k"] != "" {
		t.Errorf("a refused batch stored a field: %v", v.Fields)
	}
	// livechat/visitor skips undefined and room-scope keys silently.
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-cf", "customFields": []any{
		map[string]any{"key": "customerId", "value": "C-7", "overwrite": true}, map[string]any{"key": "junk", "value": "x", "overwrite": true},
		map[string]any{"key": "orderRef", "value": "ORD-9", "overwrite": true}}}}, nil)
	v, _ := h.s.visitorByToken(context.Background(), "tok-cf")
	if v.Fields["customerId"] != "C-7" || v.Fields["junk"] != "" || v.Fields["orderRef"] != "" {
		t.Errorf("visitor fields after registration %v", v.Fields)
	}

	rid := h.room("tok-cf")
	h.ok("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-cf", "key": "orderRef", "value": "ORD-42", "overwrite": true}, nil)
	h.ok("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-cf", "key": "orderRef", "value": "ORD-43", "overwrite": false}, nil)
	conv, err := h.s.conversation(context.Background(), rid)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(conv.Props[testFieldNS]["orderRef"]); got != `"ORD-42"` {
		t.Errorf("thread property %s", got)
	}
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-cf", nil, nil)["room"].(map[string]any)
	if !equalJSON(room["livechatData"], map[string]any{"orderRef": "ORD-42"}) {
		t.Errorf("room livechatData %v", room["livechatData"])
	}
	ann := h.login("ann", "ann-secret")
	contact := h.ok("GET", "/api/v1/omnichannel/contact?contactId="+string(v.ID), nil, ann)["contact"].(map[string]any)
	if b, _ := json.Marshal(contact["livechatData"]); string(b) != `{"customerId":"C-7"}` {
		t.Errorf("contact livechatData %s", b)
	}
}
