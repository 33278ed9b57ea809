package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnregisteredPropertyNotBack (issue 16 item 2), through the whole
// gateway: an administrator registers a property, a customer sets it on
// their chat and thread, the administrator unregisters it and registers
// the same name again (refused while the old values are being deleted);
// then no route shows the old value: the customer's and the agent's
// get_chat, the customer's list_threads and get_customer.
func TestUnregisteredPropertyNotBack(t *testing.T) {
	g := startAuthzGateway(t, authzConfig(t, ""), nil)
	base := "http://" + g.addr
	c := authzClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	ag := dialAgent(t, g.addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})
	const secret = "old-value-s3cr3t"
	admin := map[string]string{"Authorization": "Bearer " + adminAgentToken}
	rw := []string{"read", "write"}
	def := jsonBody(map[string]any{"owner_client_id": "app", "name": "note", "type": "string",
		"access": map[string]any{"chat": map[string]any{"agent": rw, "customer": rw}, "thread": map[string]any{"agent": rw, "customer": rw}}})
	cfgAction := func(action, body string) authzResult {
		return c.do("POST", base+"/v3.5/configuration/action/"+action, admin, body, "")
	}
	if r := cfgAction("register_property", def); r.status != 200 {
		t.Fatalf("register_property: %d %s", r.status, r.raw)
	}
	tok := c.must("POST", base+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, "")["access_token"].(string)
	cust := map[string]string{"Authorization": "Bearer " + tok}
	custAction := func(action string, body any) authzResult {
		return c.do("POST", base+"/v3.5/customer/action/"+action+"?organization_id="+authzOrg, cust, jsonBody(body), "")
	}
	st := custAction("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}})
	if st.status != 200 {
		t.Fatalf("start_chat: %d %s", st.status, st.raw)
	}
	chat, thread := st.m["chat_id"].(string), st.m["thread_id"].(string)
	props := map[string]any{"app": map[string]any{"note": secret}}
	for _, r := range []authzResult{
		custAction("update_chat_properties", map[string]any{"id": chat, "properties": props}),
		custAction("update_thread_properties", map[string]any{"chat_id": chat, "thread_id": thread, "properties": props}),
	} {
		if r.status != 200 {
			t.Fatalf("set property: %d %s", r.status, r.raw)
		}
	}
	reads := func() map[string]authzResult {
		return map[string]authzResult{
			"customer get_chat":     custAction("get_chat", map[string]any{"chat_id": chat, "thread_id": thread}),
			"customer list_threads": custAction("list_threads", map[string]any{"chat_id": chat}),
			"customer get_customer": custAction("get_customer", map[string]any{}),
			"agent get_chat": c.do("POST", base+"/v3.5/agent/action/get_chat", map[string]string{"Authorization": "Bearer " + agentToken},
				jsonBody(map[string]any{"chat_id": chat, "thread_id": thread}), ""),
		}
	}
	if r := reads()["customer get_chat"]; !strings.Contains(string(r.raw), secret) {
		t.Fatalf("the value is not shown while registered (the test would prove nothing): %d %s", r.status, r.raw)
	}
	if r := cfgAction("unregister_property", `{"owner_client_id":"app","name":"note"}`); r.status != 200 {
		t.Fatalf("unregister_property: %d %s", r.status, r.raw)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		r := cfgAction("register_property", def)
		if r.status == 200 {
			break
		}
		if err := lcWeb(400, "validation")(r); err != nil || time.Now().After(deadline) {
			t.Fatalf("register_property again: %d %s (%v)", r.status, r.raw, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name, r := range reads() {
		if r.status != 200 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
		if strings.Contains(string(r.raw), secret) {
			t.Errorf("%s shows the value set under the previous registration: %s", name, r.raw)
		}
	}
}
