package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestAnonymousVisitorExpiry (issue 16 item 8): with
// store.anonymous_visitor_ttl set, an anonymous customer token (cookie
// grant, never a chat), a customer minted by an agent and a Rocket.Chat
// visitor without a room are deleted once idle that long, and their
// credentials are then refused in each protocol's own error format; a
// customer and a Rocket.Chat visitor with a conversation stay however
// idle; the deletions are counted in /metrics.
func TestAnonymousVisitorExpiry(t *testing.T) {
	g := startAuthzGateway(t, authzConfig(t, "store:\n  anonymous_visitor_ttl: 2s\n"), nil)
	base := "http://" + g.addr
	c := authzClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	ag := dialAgent(t, g.addr)
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})

	token := func() string {
		return c.must("POST", base+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, "")["access_token"].(string)
	}
	anon, chatting := token(), token()
	minted := c.must("POST", base+"/v2/customer/token", map[string]string{"Authorization": "Bearer " + agentToken},
		`{"grant_type":"agent_token"}`, "")["access_token"].(string)
	c.must("POST", base+"/v3.5/customer/action/start_chat?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + chatting},
		jsonBody(map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hello"}}}}}), "")
	const rcAnon, rcRoom = "rc-token-never-chatted-01", "rc-token-with-a-room-0002"
	for _, tok := range []string{rcAnon, rcRoom} {
		c.must("POST", base+"/api/v1/livechat/visitor", nil, jsonBody(map[string]any{"visitor": map[string]any{"token": tok, "name": "V"}}), "")
	}
	c.must("GET", base+"/api/v1/livechat/room?token="+rcRoom, nil, "", "")

	getCustomer := func(tok string) authzResult {
		return c.do("POST", base+"/v3.5/customer/action/get_customer?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + tok}, "{}", "")
	}
	for _, tok := range []string{anon, minted, chatting} {
		if r := getCustomer(tok); r.status != 200 {
			t.Fatalf("fresh customer token refused: %d %s", r.status, r.raw)
		}
	}
	// Idle for longer than the TTL: the sweeper (every second here)
	// deletes the anonymous ones.
	deadline := time.Now().Add(waitLimit)
	for getCustomer(anon).status == 200 || getCustomer(minted).status == 200 {
		if time.Now().After(deadline) {
			t.Fatalf("anonymous customers never expired\n%s", g.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tok := range []string{anon, minted} {
		if err := lcWeb(401, "authentication")(getCustomer(tok)); err != nil {
			t.Errorf("customer Web API with an expired customer's token: %v", err)
		}
		r := runRTM(t, "ws://"+g.addr+"/v3.5/customer/rtm/ws?organization_id="+authzOrg, "", "login", map[string]any{"token": "Bearer " + tok})
		if err := rtmErr("authentication")(r); err != nil {
			t.Errorf("customer RTM login with an expired customer's token: %v", err)
		}
	}
	if err := rcFail(400, "")(c.do("GET", base+"/api/v1/livechat/room?token="+rcAnon, nil, "", "")); err != nil {
		t.Errorf("Rocket.Chat room with an expired visitor's token: %v", err)
	}
	if r := c.do("GET", base+"/api/v1/livechat/visitor/"+rcAnon, nil, "", ""); r.status == 200 && r.m["visitor"] != nil {
		t.Errorf("Rocket.Chat visitor without a room still there: %s", r.raw)
	}
	// Those with a conversation stay.
	if r := getCustomer(chatting); r.status != 200 {
		t.Errorf("customer with a chat refused after the sweep: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", base+"/api/v1/livechat/visitor/"+rcRoom, nil, "", ""); r.status != 200 || r.m["visitor"] == nil {
		t.Errorf("Rocket.Chat visitor with a room lost: %d %s", r.status, r.raw)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^chatgate_anonymous_visitors_expired_total (\d+)`).FindSubmatch(body)
	if m == nil {
		t.Fatal("no chatgate_anonymous_visitors_expired_total in /metrics")
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 3 {
		t.Errorf("chatgate_anonymous_visitors_expired_total = %d, want >= 3", n)
	}
}
