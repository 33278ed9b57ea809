package main

import (
	"net/http"
	"testing"
	"time"
)

// TestConfigTokenOpensOnlyConfigurationAPI: webhooks.config_token is a
// bearer for the Configuration API and nothing else: the agent Web API,
// the agent RTM, the Rocket.Chat agent routes and the customer token
// endpoint's agent grant all refuse it in their own formats.
func TestConfigTokenOpensOnlyConfigurationAPI(t *testing.T) {
	const tok = "cfg-token-0123456789abcdef0123456789"
	g := startAuthzGateway(t, authzConfig(t, "webhooks:\n  config_token: "+tok+"\n"), nil)
	base := "http://" + g.addr
	c := authzClient{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	if r := c.do("POST", base+"/v3.5/configuration/action/list_webhooks", bearer, `{"owner_client_id":"app"}`, ""); r.status != 200 {
		t.Fatalf("Configuration API with the configuration token: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct {
		name string
		r    authzResult
		want authzWant
	}{
		{"agent Web API", c.do("POST", base+"/v3.5/agent/action/list_chats", bearer, "{}", ""), lcWeb(401, "authentication")},
		{"customer token, agent grant", c.do("POST", base+"/v2/customer/token", bearer, `{"grant_type":"agent_token"}`, ""), lcToken(401, "identity_exception")},
		{"Rocket.Chat agent route", c.do("GET", base+"/api/v1/livechat/rooms", map[string]string{"X-User-Id": "configuration-token", "X-Auth-Token": tok}, "", ""), rcUnauthorized()},
		{"agent RTM login", runRTM(t, "ws://"+g.addr+"/v3.5/agent/rtm/ws", "", "login", map[string]any{"token": "Bearer " + tok}), rtmErr("authentication")},
	} {
		if err := tc.want(tc.r); err != nil {
			t.Errorf("%s with the configuration token: %v", tc.name, err)
		}
	}
}
