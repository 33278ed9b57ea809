package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// limitsConfig is the authorization matrix's config with small limits and
// no exemption for 127.0.0.1.
func limitsConfig(t *testing.T, extra string) string {
	t.Helper()
	p := authzConfig(t, "")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "rate_limits:\n  exempt: [\"127.0.0.1\", \"::1\"]\n", "rate_limits:\n"+
		"  connections_per_address: 4\n  failed_logins: {per_minute: 1, burst: 3}\n  starts: {per_minute: 1, burst: 2}\n"+
		"  messages: {per_minute: 1, burst: 3}\n  uploads: {per_minute: 1, burst: 1}\n  new_customers: {per_minute: 1, burst: 4}\n", 1)
	cfg += extra
	out := filepath.Join(t.TempDir(), "limits.yaml")
	if err := os.WriteFile(out, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRateLimits (issue 16, Low 8): each limit refuses past its burst,
// in the protocol's own error format, and counts in /metrics.
func TestRateLimits(t *testing.T) {
	g := startAuthzGateway(t, limitsConfig(t, ""), nil)
	base := "http://" + g.addr
	c := authzClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}

	// Anonymous customers: the cookie grant makes 4, then 429.
	var tok string
	for i := range 4 {
		m := c.must("POST", base+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, "")
		if i == 0 {
			tok = m["access_token"].(string)
		}
	}
	if r := c.do("POST", base+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, ""); r.status != 429 || r.m["oauth_exception"] != "too_many_requests" {
		t.Errorf("5th new customer: %d %s", r.status, r.raw)
	}

	// Messages per visitor: start_chat's event and two more, then
	// too_many_requests.
	auth := map[string]string{"Authorization": "Bearer " + tok}
	act := func(action string, payload any) authzResult {
		return c.do("POST", base+"/v3.5/customer/action/"+action+"?organization_id="+authzOrg, auth, jsonBody(payload), "")
	}
	r := act("start_chat", map[string]any{"chat": map[string]any{"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": "hi"}}}}})
	if r.status != 200 {
		t.Fatalf("start_chat: %d %s", r.status, r.raw)
	}
	chat := r.m["chat_id"].(string)
	var last authzResult
	for i := range 4 {
		last = act("send_event", map[string]any{"chat_id": chat, "event": map[string]any{"type": "message", "text": fmt.Sprint("m", i)}})
		if last.status != 200 {
			break
		}
	}
	if err := lcWeb(429, "too_many_requests")(last); err != nil {
		t.Errorf("messages: %v", err)
	}

	// Uploads per visitor: one, then too_many_requests.
	body, ctype := multipartFile("a.txt", "a")
	if r := c.do("POST", base+"/v3.5/customer/action/upload_file?organization_id="+authzOrg, auth, body, ctype); r.status != 200 {
		t.Fatalf("upload: %d %s", r.status, r.raw)
	}
	if err := lcWeb(429, "too_many_requests")(c.do("POST", base+"/v3.5/customer/action/upload_file?organization_id="+authzOrg, auth, body, ctype)); err != nil {
		t.Errorf("uploads: %v", err)
	}

	// Starts per address: the customer's start_chat used one; a v2 start
	// uses the second; the next is 429 {"error"}.
	v2 := func(vid string) authzResult {
		return c.do("POST", base+"/visitors/"+vid+"/chat/start", map[string]string{"X-API-Version": "2"},
			url.Values{"licence_id": {testLicence}, "welcome_message": {"hi"}}.Encode(), "application/x-www-form-urlencoded")
	}
	if r := v2("v2-limits-1"); r.status != 200 {
		t.Fatalf("v2 start: %d %s", r.status, r.raw)
	}
	if err := v2Err(429)(v2("v2-limits-2")); err != nil {
		t.Errorf("starts: %v", err)
	}

	// Failed logins per address: 3 wrong Rocket.Chat logins, then every
	// request from the address is 429 in the path's format, even a right
	// login, and the agent RTM refuses before checking.
	for range 3 {
		if r := c.do("POST", base+"/api/v1/login", nil, jsonBody(map[string]any{"user": "jane@example.com", "password": "wrong"}), ""); r.status != 401 {
			t.Fatalf("wrong login: %d %s", r.status, r.raw)
		}
	}
	if err := rcFail(429, "")(c.do("POST", base+"/api/v1/login", nil, jsonBody(map[string]any{"user": "jane@example.com", "password": agentPassword}), "")); err != nil {
		t.Errorf("login after failures: %v", err)
	}
	if err := lcWeb(429, "too_many_requests")(c.do("POST", base+"/v3.5/agent/action/list_chats", bearer(agentToken), "{}", "")); err != nil {
		t.Errorf("agent Web API after failures: %v", err)
	}

	if err := rtmErr("too_many_requests")(runRTM(t, "ws://"+g.addr+"/v3.5/agent/rtm/ws", "", "login",
		map[string]any{"token": "Bearer " + agentToken})); err != nil {
		t.Errorf("agent RTM login after failures: %v", err)
	}
	// A request without credentials is not refused.
	if r := c.do("GET", base+"/api/v1/livechat/config", nil, "", ""); r.status != 200 {
		t.Errorf("credential-free request after failures: %d", r.status)
	}

	// Metrics count every refusal by limit.
	m := c.do("GET", base+"/metrics", nil, "", "")
	for _, l := range []string{"new_customers", "messages", "uploads", "starts", "failed_logins"} {
		if !strings.Contains(string(m.raw), `chatgate_rate_limited_total{limit="`+l+`"}`) {
			t.Errorf("metrics lack the %s refusals", l)
		}
	}
}

// TestConnectionCap: open websockets per address are capped (4 here):
// the next upgrade is refused with 429 in the path's format, and a slot
// is free again once a socket closes.
func TestConnectionCap(t *testing.T) {
	cfg := limitsConfig(t, "")
	b, _ := os.ReadFile(cfg)
	// Logins are not what this test is about.
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(b), "failed_logins: {per_minute: 1, burst: 3}", "failed_logins: {burst: 0}", 1)), 0o600)
	g := startAuthzGateway(t, cfg, nil)
	ws := "ws://" + g.addr
	var open []*websocket.Conn
	for i := range 4 {
		conn, _, err := websocket.DefaultDialer.Dial(ws+"/v3.5/agent/rtm/ws", nil)
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		open = append(open, conn)
	}
	for _, p := range []struct{ path, want string }{
		{"/v3.5/agent/rtm/ws", `"too_many_requests"`},
		{"/websocket", `error-too-many-requests`},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(ws+p.path, nil)
		if err == nil || resp == nil || resp.StatusCode != 429 {
			t.Fatalf("%s past the cap: %v %v", p.path, err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), p.want) {
			t.Errorf("%s refusal body %s", p.path, body)
		}
	}
	open[0].Close()
	deadline := time.Now().Add(waitLimit)
	for {
		conn, _, err := websocket.DefaultDialer.Dial(ws+"/v3.5/agent/rtm/ws", nil)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a socket closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range open[1:] {
		c.Close()
	}
}

// TestReadTimeout (issue 16, Low 7): a request whose body trickles, or
// whose headers are followed by silence, is cut off after
// server.read_timeout; websockets outlive it.
func TestReadTimeout(t *testing.T) {
	cfg := limitsConfig(t, "")
	b, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(b), "log:\n  level: error\n", "log:\n  level: error\nserver:\n  read_timeout: 1s\n", 1)), 0o600)
	g := startAuthzGateway(t, cfg, nil)

	for _, tc := range []struct {
		name string
		send string
	}{
		{"body never sent", "POST /v2/customer/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"},
		{"headers never finished", "POST /v2/customer/token HTTP/1.1\r\nHost: x\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			// The server ends the exchange; without a read timeout this
			// read would wait for the test's own deadline.
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", time.Since(start))
			}
		})
	}

	// A websocket idle for longer than read_timeout stays up.
	a := dialAgent(t, g.addr)
	a.call("login", map[string]any{"token": "Bearer " + agentToken})
	time.Sleep(2500 * time.Millisecond)
	a.call("list_chats", map[string]any{})
}

// TestMetricsAddr (issue 16, Low 10): with server.metrics_addr, /metrics
// is served there and not on the public listener.
func TestMetricsAddr(t *testing.T) {
	cfg := limitsConfig(t, "")
	b, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(b), "log:\n  level: error\n", "log:\n  level: error\nserver:\n  metrics_addr: 127.0.0.1:0\n", 1)), 0o600)
	metricsAt := make(chan string, 1)
	g := startGatewayWith(t, cfg, serveOptions{MetricsListening: func(a string) { metricsAt <- a }})
	c := authzClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}
	if r := c.do("GET", "http://"+g.addr+"/metrics", nil, "", ""); r.status != 404 {
		t.Errorf("public /metrics: %d", r.status)
	}
	addr := <-metricsAt
	r := c.do("GET", "http://"+addr+"/metrics", nil, "", "")
	for _, name := range []string{"chatgate_events_committed_total", "chatgate_stale_retries_total"} {
		if r.status != 200 || !strings.Contains(string(r.raw), name) {
			t.Errorf("internal /metrics without %s: %d %.200s", name, r.status, r.raw)
		}
	}
}
