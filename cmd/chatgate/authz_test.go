package main

// authz_test.go: one authorization matrix across every surface. Each row is
// one refusal (or one deliberately public route) of one route, action, DDP
// method or subscription, with the error its own protocol must answer.
// TestAuthorizationMatrix runs the rows against one in-process gateway on
// 127.0.0.1 and then checks that every gin route and everything the
// surfaces dispatch below their routes (REST table, actions, DDP methods
// and subscriptions) has a row, so that a new route cannot skip the matrix.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
)

const (
	// Carl serves only department 2 (Sales) and is never online: visitor
	// B's chats (department 1, served by Jane) are none of his business.
	otherAgentToken    = "other-agent-token-carl-0123456789"
	otherAgentPassword = "other-agent-password"
	// Ada administers (admin: true) and serves only department 2: the
	// Configuration API and customer tokens for anyone are hers; Jane and
	// Carl are not administrators.
	adminAgentToken = "admin-agent-token-ada-0123456789"
	// sameDeptAgentToken is a plain agent of B's department; supervisorToken
	// a supervisor of it (role: supervisor).
	sameDeptAgentToken = "same-dept-agent-token-nina-0123456789"
	supervisorToken    = "supervisor-token-sam-0123456789"
	// servedSecret names the visitor of a chat Jane serves in department
	// 0: no answer to nina (a plain agent of department 0) may show it.
	servedSecret = "served-S"
	// foreignOrigin is a web site that is none of the gateway's; shopOrigin
	// is the one allowed in livechat.customer.allowed_origins.
	foreignOrigin = "https://evil.example"
	shopOrigin    = "https://shop.example"
	authzOrg      = "org-authz"
	authzSecret   = "secret-B" // in every piece of visitor B's data; no refusal may show it
)

// authzKind is how a row's request travels.
type authzKind int

const (
	viaHTTP        authzKind = iota
	viaAgentRTM              // one frame on /v3.5/agent/rtm/ws after an optional login
	viaCustomerRTM           // one frame on /v3.5/customer/rtm/ws after an optional login
	viaDDPMethod             // a DDP method after connect
	viaDDPSub                // a DDP sub after connect
)

// authzRow is one probe.
type authzRow struct {
	covers []string // inventory keys (see authzInventory) the row exercises
	probe  string   // what is wrong with the request
	kind   authzKind
	// viaHTTP
	method, path string
	hdr          map[string]string
	body         string // JSON unless ctype says otherwise
	ctype        string
	// viaAgentRTM / viaCustomerRTM: login is the token to log in with
	// first ("" = no login); expiredGW sends to the short-TTL gateway.
	login     string
	expiredGW bool
	// viaAgentRTM / viaCustomerRTM / viaDDPMethod / viaDDPSub
	action  string
	payload any
	params  []any
	want    authzWant
	// reveals: the row's answer is B's data on purpose (a capability URL).
	reveals bool
}

// authzResult is what came back: an HTTP answer, an RTM response frame or
// a DDP result/nosub frame.
type authzResult struct {
	status int
	raw    []byte
	m      map[string]any
	header http.Header // HTTP rows only
}

type authzWant func(r authzResult) error

// --- expected answers, one per protocol's error shape ---------------------------

func jsonPath(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// v2Err: LiveChat v2 `{"error": "<message>"}` with status.
func v2Err(status int) authzWant {
	return func(r authzResult) error {
		if r.status != status || len(r.m) != 1 || jsonPath(r.m, "error") == nil {
			return fmt.Errorf("want %d {\"error\":…}, got %d %s", status, r.status, r.raw)
		}
		return nil
	}
}

// rcFail: Rocket.Chat `{"success":false,…}` with status; code, if set, is
// the `error` field (the shape A code, or the Meteor.Error code of shape B).
func rcFail(status int, code string) authzWant {
	return func(r authzResult) error {
		if r.status != status || r.m["success"] != false {
			return fmt.Errorf("want %d success:false, got %d %s", status, r.status, r.raw)
		}
		if e, _ := r.m["error"].(string); e == "" || code != "" && e != code {
			return fmt.Errorf("want error %q, got %s", code, r.raw)
		}
		return nil
	}
}

// rcUnauthorized: the agent routes' 401 without (valid) credentials.
func rcUnauthorized() authzWant {
	return func(r authzResult) error {
		if r.status != 401 || r.m["status"] != "error" || r.m["message"] != "You must be logged in to do this." {
			return fmt.Errorf("want 401 You must be logged in, got %d %s", r.status, r.raw)
		}
		return nil
	}
}

// rcLoginFailed: POST login's 401.
func rcLoginFailed() authzWant {
	return func(r authzResult) error {
		if r.status != 401 || r.m["status"] != "error" || r.m["error"] != "Unauthorized" {
			return fmt.Errorf("want 401 Unauthorized, got %d %s", r.status, r.raw)
		}
		return nil
	}
}

// lcWeb: LiveChat Web / Configuration API `{"error":{"type","message"}}`.
func lcWeb(status int, typ string) authzWant {
	return func(r authzResult) error {
		if r.status != status || jsonPath(r.m, "error", "type") != typ || jsonPath(r.m, "error", "message") == nil {
			return fmt.Errorf("want %d error type %s, got %d %s", status, typ, r.status, r.raw)
		}
		return nil
	}
}

// lcToken: /v2/customer/token's `{"<kind>_exception": "..."}`.
func lcToken(status int, key string) authzWant {
	return func(r authzResult) error {
		if r.status != status || r.m[key] == nil {
			return fmt.Errorf("want %d %s, got %d %s", status, key, r.status, r.raw)
		}
		return nil
	}
}

// rtmErr: LiveChat RTM response with success false and the error type.
func rtmErr(typ string) authzWant {
	return func(r authzResult) error {
		if r.m["type"] != "response" || r.m["success"] != false || jsonPath(r.m, "payload", "error", "type") != typ {
			return fmt.Errorf("want RTM error %s, got %s", typ, r.raw)
		}
		return nil
	}
}

// rtmPush: the socket is refused with a disconnect push of this reason.
func rtmPush(action, reason string) authzWant {
	return func(r authzResult) error {
		if r.m["type"] != "push" || r.m["action"] != action || jsonPath(r.m, "payload", "reason") != reason {
			return fmt.Errorf("want push %s %s, got %s", action, reason, r.raw)
		}
		return nil
	}
}

// meteor: a DDP result carrying a Meteor.Error with this code.
func meteor(code string) authzWant {
	return func(r authzResult) error {
		if r.m["msg"] != "result" || jsonPath(r.m, "error", "error") != code || jsonPath(r.m, "error", "errorType") != "Meteor.Error" {
			return fmt.Errorf("want result error %s, got %s", code, r.raw)
		}
		return nil
	}
}

// ddpResult: a DDP result without error whose result satisfies ok (the
// method refuses by answering false/nothing, as Rocket.Chat does).
func ddpResult(desc string, ok func(any) bool) authzWant {
	return func(r authzResult) error {
		if r.m["msg"] != "result" || r.m["error"] != nil || !ok(r.m["result"]) {
			return fmt.Errorf("want result %s, got %s", desc, r.raw)
		}
		return nil
	}
}

// nosub: a DDP nosub with this Meteor.Error code.
func nosub(code string) authzWant {
	return func(r authzResult) error {
		if r.m["msg"] != "nosub" || jsonPath(r.m, "error", "error") != code {
			return fmt.Errorf("want nosub %s, got %s", code, r.raw)
		}
		return nil
	}
}

// status: a deliberately public route answers this status.
func status(code int) authzWant {
	return func(r authzResult) error {
		if r.status != code {
			return fmt.Errorf("want %d, got %d %.300s", code, r.status, r.raw)
		}
		return nil
	}
}

// genericNotFound: the gateway's own 404.
func genericNotFound() authzWant {
	return func(r authzResult) error {
		if r.status != 404 || r.m["error"] != "not found" {
			return fmt.Errorf("want 404 {\"error\":\"not found\"}, got %d %s", r.status, r.raw)
		}
		return nil
	}
}

// --- the fixture: two visitors on every visitor surface, one agent ------------------

type authzFixture struct {
	base, expiredBase string
	agentToken        string
	// LiveChat v2
	v2A, v2B, sidA, sidB string
	// Rocket.Chat
	tokA, tokB, ridA, ridB, msgB string
	rcVisitorB                   string // B's Rocket.Chat visitor _id
	rcUser, rcToken, rcRevoked   string
	carlUser, carlToken          string // Rocket.Chat login of the other agent
	// LiveChat customer
	ctA, ctB, chatA, chatB, threadB, eventB, ctExpired string
	// servedB is a v2 chat of department 0 (its visitor is named
	// servedSecret) on the agent API, which Jane serves.
	servedB, servedThreadB string
	ctNoChat               string // a customer token whose customer never started a chat
	fileURL                string
}

type authzClient struct {
	t    *testing.T
	http *http.Client
}

func (c authzClient) do(method, u string, hdr map[string]string, body, ctype string) authzResult {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		if ctype == "" {
			ctype = "application/json"
		}
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := authzResult{status: resp.StatusCode, raw: raw, header: resp.Header}
	_ = json.Unmarshal(raw, &r.m)
	return r
}

// must answers a setup request that must succeed.
func (c authzClient) must(method, u string, hdr map[string]string, body, ctype string) map[string]any {
	c.t.Helper()
	r := c.do(method, u, hdr, body, ctype)
	if r.status != 200 {
		c.t.Fatalf("setup %s %s: %d %s", method, u, r.status, r.raw)
	}
	return r.m
}

// multipartFile is a multipart body with one field "file" and its
// content type.
func multipartFile(name, content string) (body, ctype string) {
	var mb bytes.Buffer
	mw := multipart.NewWriter(&mb)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		panic(err)
	}
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	return mb.String(), mw.FormDataContentType()
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func authzConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := "license:\n  id: \"" + testLicence + "\"\n  organization_id: " + authzOrg + "\n" +
		"log:\n  level: error\n" +
		// Hundreds of refused credentials from 127.0.0.1: the matrix is
		// about authorization; the limits have their own tests.
		"rate_limits:\n  exempt: [\"127.0.0.1\", \"::1\"]\n" +
		"livechat:\n  v2:\n    poll_timeout: 1h\n" + extra +
		"properties:\n  rating:\n    score:\n      type: int\n      access:\n" +
		"        chat: {customer: [read, write], agent: [read, write]}\n" +
		"        thread: {customer: [read, write], agent: [read, write]}\n" +
		"        event: {customer: [read, write], agent: [read, write]}\n" +
		"departments:\n  - id: \"0\"\n    name: General\n  - id: \"1\"\n    name: Support\n  - id: \"2\"\n    name: Sales\n" +
		"agents:\n  - id: jane@example.com\n    name: Jane Doe\n    token: " + agentToken + "\n    password: " + agentPassword + "\n" +
		"  - id: carl@example.com\n    name: Carl\n    token: " + otherAgentToken + "\n    password: " + otherAgentPassword + "\n    departments: [\"2\"]\n" +
		"  - id: ada@example.com\n    name: Ada\n    token: " + adminAgentToken + "\n    departments: [\"2\"]\n    admin: true\n" +
		// Two agents of department 0 who serve none of its chats: a
		// plain agent and a supervisor.
		"  - id: nina@example.com\n    name: Nina\n    token: " + sameDeptAgentToken + "\n    departments: [\"0\"]\n" +
		"  - id: sam@example.com\n    name: Sam\n    token: " + supervisorToken + "\n    departments: [\"0\"]\n    role: supervisor\n"
	p := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAuthzGateway is startGateway that also records the route inventory.
func startAuthzGateway(t *testing.T, cfg string, inv *authzInventory) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	up := make(chan string, 1)
	go func() {
		g.done <- serve(ctx, serveOptions{ConfigPath: cfg, DataPath: filepath.Join(t.TempDir(), "authz.db"), Addr: "127.0.0.1:0",
			Stderr: g.stderr, Getenv: func(string) string { return "" }, Listening: func(a string) { up <- a },
			Routes: func(r gin.RoutesInfo, sub map[string][]string) {
				if inv != nil {
					inv.set(r, sub)
				}
			}})
	}()
	select {
	case g.addr = <-up:
	case err := <-g.done:
		t.Fatalf("gateway did not start: %v\n%s", err, g.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not start in time\n%s", g.stderr)
	}
	t.Cleanup(g.stop)
	return g
}

func newAuthzFixture(t *testing.T, c authzClient, base, expiredBase string) *authzFixture {
	t.Helper()
	f := &authzFixture{base: base, expiredBase: expiredBase, agentToken: agentToken, v2A: "v2-visitor-a", v2B: "v2-visitor-b"}

	// An agent online on the agent RTM, so that rooms open.
	ag := dialAgent(t, strings.TrimPrefix(base, "http://"))
	ag.call("login", map[string]any{"token": "Bearer " + agentToken})

	// LiveChat v2: two chats; B's carries the secret.
	v2 := func(vid, action string, form url.Values) map[string]any {
		form.Set("licence_id", testLicence)
		return c.must("POST", base+"/visitors/"+vid+"/chat/"+action, map[string]string{"X-API-Version": "2"}, form.Encode(), "application/x-www-form-urlencoded")
	}
	f.sidA = v2(f.v2A, "start", url.Values{"welcome_message": {"hi A"}})["secured_session_id"].(string)
	f.sidB = v2(f.v2B, "start", url.Values{"welcome_message": {"hi " + authzSecret}, "name": {authzSecret}, "group": {"1"}})["secured_session_id"].(string)
	v2(f.v2B, "send_message", url.Values{"secured_session_id": {f.sidB}, "message": {authzSecret + " v2"}})
	// A chat of department 0 that Jane serves (department 1 is relayed):
	// the rows of a plain agent and a supervisor of department 0 aim at it.
	v2("v2-visitor-s", "start", url.Values{"welcome_message": {"hi"}, "name": {servedSecret}, "group": {"0"}})
	for _, s := range ag.call("list_chats", map[string]any{"limit": 100})["chats_summary"].([]any) {
		sm := s.(map[string]any)
		last, _ := sm["last_thread_summary"].(map[string]any)
		if strings.Contains(fmt.Sprint(sm["users"]), servedSecret) && last != nil && last["queue"] == nil {
			f.servedB, f.servedThreadB = sm["id"].(string), last["id"].(string)
		}
	}
	if f.servedB == "" {
		t.Fatalf("fixture: Jane does not serve the chat of department 0: %v", ag.call("list_chats", map[string]any{"limit": 100}))
	}

	// Rocket.Chat: two visitors with a room each; B's message has a client id.
	f.tokA, f.tokB = "rc-token-visitor-a-0001", "rc-token-visitor-b-0002"
	for _, v := range []struct{ tok, name string }{{f.tokA, "Alice"}, {f.tokB, authzSecret}} {
		c.must("POST", base+"/api/v1/livechat/visitor", nil, jsonBody(map[string]any{"visitor": map[string]any{"token": v.tok, "name": v.name, "department": "1", "email": v.tok + "@example.com"}}), "")
	}
	f.rcVisitorB = c.must("GET", base+"/api/v1/livechat/visitor/"+f.tokB, nil, "", "")["visitor"].(map[string]any)["_id"].(string)
	f.ridA = c.must("GET", base+"/api/v1/livechat/room?token="+f.tokA, nil, "", "")["room"].(map[string]any)["_id"].(string)
	f.ridB = c.must("GET", base+"/api/v1/livechat/room?token="+f.tokB, nil, "", "")["room"].(map[string]any)["_id"].(string)
	f.msgB = "rc-msg-b-00000000001"
	c.must("POST", base+"/api/v1/livechat/message", nil, jsonBody(map[string]any{"token": f.tokB, "rid": f.ridB, "msg": authzSecret + " rc", "_id": f.msgB}), "")

	// Rocket.Chat agent: a live token and a revoked one.
	login := func() (string, string) {
		d := c.must("POST", base+"/api/v1/login", nil, jsonBody(map[string]any{"user": "jane@example.com", "password": agentPassword}), "")["data"].(map[string]any)
		return d["userId"].(string), d["authToken"].(string)
	}
	var revokedUser string
	revokedUser, f.rcRevoked = login()
	c.must("POST", base+"/api/v1/logout", map[string]string{"X-User-Id": revokedUser, "X-Auth-Token": f.rcRevoked}, "{}", "")
	f.rcUser, f.rcToken = login()
	cd := c.must("POST", base+"/api/v1/login", nil, jsonBody(map[string]any{"user": "carl@example.com", "password": otherAgentPassword}), "")["data"].(map[string]any)
	f.carlUser, f.carlToken = cd["userId"].(string), cd["authToken"].(string)

	// LiveChat customers: two customers with a chat each.
	token := func(b string) (string, string) {
		m := c.must("POST", b+"/v2/customer/token", nil, `{"grant_type":"cookie"}`, "")
		return m["access_token"].(string), m["entity_id"].(string)
	}
	f.ctA, f.chatA = token(base)
	f.ctB, f.chatB = token(base)
	f.ctNoChat, _ = token(base)
	start := func(tok, text string) map[string]any {
		return c.must("POST", base+"/v3.5/customer/action/start_chat?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + tok},
			jsonBody(map[string]any{"chat": map[string]any{"access": map[string]any{"group_ids": []int{1}},
				"thread": map[string]any{"events": []any{map[string]any{"type": "message", "text": text}}}}}), "")
	}
	start(f.ctA, "hello from A")
	sb := start(f.ctB, authzSecret+" customer")
	if sb["chat_id"] != f.chatB {
		t.Fatalf("start_chat B: %v (entity %s)", sb, f.chatB)
	}
	f.threadB = sb["thread_id"].(string)
	f.eventB = sb["event_ids"].([]any)[0].(string)
	c.must("POST", base+"/v3.5/customer/action/update_customer?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + f.ctB},
		jsonBody(map[string]any{"name": authzSecret}), "")

	// A file B uploaded: its URL is the capability.
	fileBody, fileType := multipartFile("b.txt", authzSecret+" file")
	f.fileURL = c.must("POST", base+"/v3.5/customer/action/upload_file?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + f.ctB},
		fileBody, fileType)["url"].(string)

	// An expired customer token: the second gateway's tokens live one
	// second; wait until it refuses this one.
	f.ctExpired, _ = token(expiredBase)
	deadline := time.Now().Add(waitLimit)
	for {
		r := c.do("POST", expiredBase+"/v3.5/customer/action/get_customer?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + f.ctExpired}, "{}", "")
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("short-lived customer token never expired: %d %s", r.status, r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return f
}

// --- the inventory ---------------------------------------------------------------

type authzInventory struct {
	routes gin.RoutesInfo
	sub    map[string][]string
}

func (inv *authzInventory) set(r gin.RoutesInfo, sub map[string][]string) {
	inv.routes, inv.sub = r, sub
}

var apiVersion = regexp.MustCompile(`^/v3\.[0-9]+/`)

// routeKey names a gin route in the matrix: HEAD is GET's twin, the v3.x
// versions share their handlers (rows use v3.5) and /api/v1/*path is one
// catch-all whose table is listed by the Rocket.Chat surface.
func routeKey(method, path string) string {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	path = apiVersion.ReplaceAllString(path, "/v3.x/")
	if path == "/api/v1/*path" || path == "/api/apps/*path" {
		method = "ANY"
	}
	return method + " " + path
}

// keys lists every inventory key: gin routes and dispatched entries
// ("<surface> <entry>").
func (inv *authzInventory) keys() []string {
	set := map[string]bool{}
	for _, r := range inv.routes {
		set[routeKey(r.Method, r.Path)] = true
	}
	for s, entries := range inv.sub {
		for _, e := range entries {
			set[s+" "+e] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- rows ----------------------------------------------------------------------------

const (
	keyV2Start   = "POST /visitors/:visitor_id/chat/start"
	keyV2Pending = "GET /visitors/:visitor_id/chat/get_pending_messages"
	keyV2Send    = "POST /visitors/:visitor_id/chat/send_message"
	keyV2Close   = "POST /visitors/:visitor_id/chat/close"
	keyRCAPI     = "ANY /api/v1/*path"
	keyAgentWeb  = "POST /v3.x/agent/action/:action"
	keyAgentWS   = "GET /v3.x/agent/rtm/ws"
	keyCustWeb   = "POST /v3.x/customer/action/:action"
	keyCustWS    = "GET /v3.x/customer/rtm/ws"
	keyConfWeb   = "POST /v3.x/configuration/action/:action"
	keyConfGET   = "GET /v3.x/configuration/action/list_webhook_failures"
	keyDDP       = "GET /websocket"
	keyToken     = "POST /v2/customer/token"
	keyFiles     = "GET /file-upload/:id/:name"
)

// Actions of the LiveChat surfaces, listed here on purpose: a new action
// fails the coverage check until it is added (and so probed).
var (
	agentActions = []string{"add_user_to_chat", "ban_customer", "deactivate_chat", "delete_chat_properties", "delete_event_properties",
		"delete_thread_properties", "follow_chat", "get_chat", "get_customer", "list_agents_for_transfer", "list_archives", "list_chats",
		"list_routing_statuses", "list_threads", "logout", "mark_events_as_seen", "multicast", "remove_user_from_chat", "resume_chat",
		"send_event", "send_typing_indicator", "set_routing_status", "start_chat", "tag_thread", "transfer_chat", "unfollow_chat",
		"untag_thread", "update_chat_properties", "update_customer", "update_event_properties", "update_thread_properties", "upload_file"}
	configActions = []string{"list_properties", "list_webhook_failures", "list_webhooks", "register_property", "register_webhook",
		"unregister_property", "unregister_webhook"}
)

func (f *authzFixture) rows() []authzRow {
	var rows []authzRow
	add := func(r ...authzRow) { rows = append(rows, r...) }
	v2hdr := map[string]string{"X-API-Version": "2"}
	form := func(kv ...string) string {
		v := url.Values{"licence_id": {testLicence}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const formCT = "application/x-www-form-urlencoded"

	// LiveChat v2 visitor REST: the VISITOR_ID and secured_session_id pair
	// is the credential; another's pair, a forged or a missing session id.
	for _, r := range []struct {
		key, method, action string
		extra               []string
	}{
		{keyV2Pending, "GET", "get_pending_messages", nil},
		{keyV2Send, "POST", "send_message", []string{"message", "intrude"}},
		{keyV2Close, "POST", "close", nil},
	} {
		req := func(probe, vid, sid string, want authzWant) authzRow {
			kv := append([]string{"secured_session_id", sid}, r.extra...)
			row := authzRow{covers: []string{r.key}, probe: probe, method: r.method, hdr: v2hdr, want: want}
			if r.method == "GET" {
				row.path = "/visitors/" + vid + "/chat/" + r.action + "?" + form(kv...)
			} else {
				row.path, row.body, row.ctype = "/visitors/"+vid+"/chat/"+r.action, form(kv...), formCT
			}
			return row
		}
		add(req("visitor A with B's secured_session_id", f.v2A, f.sidB, v2Err(404)),
			req("B's visitor id with A's secured_session_id", f.v2B, f.sidA, v2Err(404)),
			req("forged secured_session_id", f.v2A, strings.Repeat("0", 32), v2Err(404)),
			req("no secured_session_id", f.v2A, "", v2Err(400)))
	}
	add(authzRow{covers: []string{keyV2Start}, probe: "wrong licence", method: "POST", path: "/visitors/" + f.v2A + "/chat/start",
		hdr: v2hdr, body: url.Values{"licence_id": {"1"}, "welcome_message": {"x"}}.Encode(), ctype: formCT, want: v2Err(400)})

	// Rocket.Chat REST, visitor routes: A's token on B's room or message,
	// and forged tokens.
	rc := func(key, probe, method, path string, body map[string]any, want authzWant) authzRow {
		row := authzRow{covers: []string{keyRCAPI, "rocketchat rest " + key}, probe: probe, method: method, path: "/api/v1/" + path, want: want}
		if body != nil {
			row.body = jsonBody(body)
		}
		return row
	}
	forged := "forged-visitor-token-000"
	add(
		rc("GET livechat/room", "A's token, B's rid", "GET", "livechat/room?token="+f.tokA+"&rid="+f.ridB, nil, rcFail(400, "")),
		rc("GET livechat/room", "no token", "GET", "livechat/room", nil, rcFail(400, "")),
		rc("GET livechat/visitor/:token", "forged token", "GET", "livechat/visitor/"+forged, nil, rcFail(400, "")),
		rc("DELETE livechat/visitor/:token", "forged token", "DELETE", "livechat/visitor/"+forged, nil, rcFail(400, "")),
		rc("POST livechat/visitor.status", "forged token", "POST", "livechat/visitor.status", map[string]any{"token": forged, "status": "online"}, rcFail(400, "")),
		rc("POST livechat/visitor.callStatus", "A's token, B's rid", "POST", "livechat/visitor.callStatus", map[string]any{"rid": f.ridB, "token": f.tokA, "callStatus": "x", "callId": "c"}, rcFail(400, "")),
		rc("POST livechat/room.close", "A's token, B's rid", "POST", "livechat/room.close", map[string]any{"rid": f.ridB, "token": f.tokA}, rcFail(400, "")),
		rc("POST livechat/room.transfer", "A's token, B's rid", "POST", "livechat/room.transfer", map[string]any{"rid": f.ridB, "token": f.tokA, "department": "0"}, rcFail(400, "")),
		rc("POST livechat/room.survey", "A's token, B's rid", "POST", "livechat/room.survey", map[string]any{"rid": f.ridB, "token": f.tokA, "data": []any{map[string]any{"name": "satisfaction", "value": "1"}}}, rcFail(400, "")),
		rc("POST livechat/message", "A's token, B's rid", "POST", "livechat/message", map[string]any{"token": f.tokA, "rid": f.ridB, "msg": "intrude"}, rcFail(400, "")),
		rc("POST livechat/message", "forged token", "POST", "livechat/message", map[string]any{"token": forged, "rid": f.ridB, "msg": "intrude"}, rcFail(400, "")),
		rc("GET livechat/message/:_id", "A's token, B's message", "GET", "livechat/message/"+f.msgB+"?token="+f.tokA+"&rid="+f.ridB, nil, rcFail(400, "")),
		rc("GET livechat/message/:_id", "A's token and room, B's message", "GET", "livechat/message/"+f.msgB+"?token="+f.tokA+"&rid="+f.ridA, nil, rcFail(400, "")),
		rc("PUT livechat/message/:_id", "A's token, B's message", "PUT", "livechat/message/"+f.msgB, map[string]any{"token": f.tokA, "rid": f.ridB, "msg": "x"}, rcFail(400, "")),
		rc("PUT livechat/message/:_id", "A's token and room, B's message", "PUT", "livechat/message/"+f.msgB, map[string]any{"token": f.tokA, "rid": f.ridA, "msg": "x"}, rcFail(400, "")),
		rc("DELETE livechat/message/:_id", "A's token, B's message", "DELETE", "livechat/message/"+f.msgB, map[string]any{"token": f.tokA, "rid": f.ridB}, rcFail(400, "")),
		rc("GET livechat/messages.history/:rid", "A's token, B's rid", "GET", "livechat/messages.history/"+f.ridB+"?token="+f.tokA, nil, rcFail(400, "")),
		rc("GET livechat/messages.history/:rid", "forged token", "GET", "livechat/messages.history/"+f.ridB+"?token="+forged, nil, rcFail(400, "")),
		rc("GET livechat/agent.info/:rid/:token", "A's token, B's rid", "GET", "livechat/agent.info/"+f.ridB+"/"+f.tokA, nil, rcFail(400, "")),
		// As on Rocket.Chat: the next agent is no visitor's data.
		rc("GET livechat/agent.next/:token", "public (forged token: the next agent only)", "GET", "livechat/agent.next/"+forged, nil, status(200)),
		rc("POST livechat/custom.field", "forged token", "POST", "livechat/custom.field", map[string]any{"token": forged, "key": "k", "value": "v", "overwrite": true}, rcFail(400, "")),
		rc("POST livechat/custom.fields", "forged token", "POST", "livechat/custom.fields", map[string]any{"token": forged, "customFields": []any{map[string]any{"key": "k", "value": "v", "overwrite": true}}}, rcFail(400, "")),
		// As on Rocket.Chat, page.visited answers 200 for any token and
		// room (the page echoed back); nothing is stored in B's room
		// (adapters/rocketchat TestVisitorIsolation checks).
		rc("POST livechat/page.visited", "A's token, B's rid", "POST", "livechat/page.visited", map[string]any{"rid": f.ridB, "token": f.tokA, "pageInfo": map[string]any{"change": "url", "title": "t", "location": map[string]any{"href": "h"}}}, status(200)),
		rc("POST livechat/visitor/department.transfer", "A's token, B's rid", "POST", "livechat/visitor/department.transfer", map[string]any{"rid": f.ridB, "token": f.tokA, "department": "0"}, rcFail(400, "error-invalid-room")),
		rc("POST livechat/transcript", "A's token, B's rid", "POST", "livechat/transcript", map[string]any{"rid": f.ridB, "token": f.tokA, "email": "a@example.com"}, rcFail(400, "")),
	)
	upBody, upType := multipartFile("x.txt", "x")
	add(authzRow{covers: []string{keyRCAPI, "rocketchat rest POST livechat/upload/:rid"}, probe: "A's token, B's rid", method: "POST",
		path: "/api/v1/livechat/upload/" + f.ridB, hdr: map[string]string{"x-visitor-token": f.tokA}, body: upBody, ctype: upType,
		want: rcFail(403, "unauthorized")})
	// Deliberately public visitor routes (no room of anyone's is named).
	add(
		rc("GET livechat/config", "public (forged token: no visitor in the answer)", "GET", "livechat/config?token="+forged, nil, func(r authzResult) error {
			if r.status != 200 || jsonPath(r.m, "config", "guest") != nil || jsonPath(r.m, "config", "room") != nil {
				return fmt.Errorf("want 200 without guest/room, got %d %.300s", r.status, r.raw)
			}
			return nil
		}),
		rc("POST livechat/visitor", "public (registers the caller's own token)", "POST", "livechat/visitor", map[string]any{"visitor": map[string]any{"token": "rc-token-visitor-c-0003", "name": "Cy"}}, status(200)),
		rc("POST livechat/offline.message", "public (stored as a new closed conversation)", "POST", "livechat/offline.message", map[string]any{"name": "N", "email": "n@example.com", "message": "m"}, status(200)),
		rc("POST login", "wrong password", "POST", "login", map[string]any{"user": "jane@example.com", "password": "wrong"}, rcLoginFailed()),
		rc("POST login", "unknown user", "POST", "login", map[string]any{"user": "nobody", "password": agentPassword}, rcLoginFailed()),
	)
	// No Apps-Engine: /api/apps/… is an unknown resource for everyone.
	add(authzRow{covers: []string{"ANY /api/apps/*path"}, probe: "public (no apps: 404 JSON)", method: "POST",
		path: "/api/apps/ui.interaction/app", body: "{}", want: rcFail(404, "Resource not found")})
	// An unknown route and a wrong method under /api/v1: JSON 404/405.
	add(authzRow{covers: []string{keyRCAPI}, probe: "unknown route", method: "GET", path: "/api/v1/livechat/nope", want: rcFail(404, "Resource not found")},
		authzRow{covers: []string{keyRCAPI}, probe: "wrong method", method: "PATCH", path: "/api/v1/livechat/room", want: func(r authzResult) error {
			if r.status != 405 || r.m["status"] != "error" {
				return fmt.Errorf("want 405 JSON, got %d %s", r.status, r.raw)
			}
			return nil
		}})

	// Rocket.Chat REST, agent routes (and logout): no credentials, a wrong
	// token for the right user, a forged user, a revoked token, a visitor
	// token in the agent headers.
	agentRoutes := []struct{ key, method, path string }{
		{"POST logout", "POST", "logout"},
		{"GET livechat/custom-fields", "GET", "livechat/custom-fields"},
		{"GET livechat/custom-fields/:_id", "GET", "livechat/custom-fields/x"},
		{"POST livechat/messages", "POST", "livechat/messages"},
		{"POST livechat/room.forward", "POST", "livechat/room.forward"},
		{"PUT livechat/room.visitor", "PUT", "livechat/room.visitor"},
		{"GET livechat/transfer.history/:rid", "GET", "livechat/transfer.history/" + f.ridB},
		{"GET livechat/visitor/:token/room", "GET", "livechat/visitor/" + f.tokB + "/room"},
		{"GET livechat/rooms", "GET", "livechat/rooms"},
		{"GET chat.syncMessages", "GET", "chat.syncMessages?roomId=" + f.ridB + "&lastUpdate=2000-01-01T00:00:00.000Z"},
		{"POST omnichannel/contact", "POST", "omnichannel/contact"},
		{"GET omnichannel/contact", "GET", "omnichannel/contact?contactId=x"},
		{"GET omnichannel/contact.search", "GET", "omnichannel/contact.search?email=x@example.com"},
	}
	for _, ar := range agentRoutes {
		for _, cred := range []struct {
			probe string
			hdr   map[string]string
		}{
			{"no credentials", nil},
			{"wrong token", map[string]string{"X-User-Id": f.rcUser, "X-Auth-Token": "wrong-token-000000000000000000000"}},
			{"forged user", map[string]string{"X-User-Id": "mallory@example.com", "X-Auth-Token": f.rcToken}},
			{"revoked token", map[string]string{"X-User-Id": f.rcUser, "X-Auth-Token": f.rcRevoked}},
			{"visitor token", map[string]string{"X-User-Id": f.tokA, "X-Auth-Token": f.tokA}},
			{"customer token", map[string]string{"X-User-Id": f.chatA, "X-Auth-Token": f.ctA, "Authorization": "Bearer " + f.ctA}},
		} {
			row := rc(ar.key, cred.probe, ar.method, ar.path, nil, rcUnauthorized())
			row.hdr = cred.hdr
			if ar.method != "GET" {
				row.body = "{}"
			}
			add(row)
		}
	}

	// Rocket.Chat agent routes, the other agent (Carl) on B's room.
	carlHdr := map[string]string{"X-User-Id": f.carlUser, "X-Auth-Token": f.carlToken}
	for _, r := range []struct {
		key, method, path string
		body              map[string]any
		want              authzWant
	}{
		{"GET chat.syncMessages", "GET", "chat.syncMessages?roomId=" + f.ridB + "&lastUpdate=2000-01-01T00:00:00.000Z", nil, rcFail(403, "")},
		{"GET livechat/transfer.history/:rid", "GET", "livechat/transfer.history/" + f.ridB, nil, rcFail(403, "")},
		{"GET livechat/visitor/:token/room", "GET", "livechat/visitor/" + f.tokB + "/room", nil, func(r authzResult) error {
			if rooms, _ := r.m["rooms"].([]any); r.status != 200 || rooms == nil || len(rooms) != 0 {
				return fmt.Errorf("want 200 with no rooms, got %d %s", r.status, r.raw)
			}
			return nil
		}},
		{"POST livechat/messages", "POST", "livechat/messages", map[string]any{"visitor": map[string]any{"token": f.tokB}, "messages": []any{map[string]any{"msg": "intrude"}}}, rcFail(403, "")},
		{"POST livechat/room.forward", "POST", "livechat/room.forward", map[string]any{"roomId": f.ridB, "userId": "carl@example.com"}, rcFail(400, "Not authorized [error-not-authorized]")},
		{"PUT livechat/room.visitor", "PUT", "livechat/room.visitor", map[string]any{"rid": f.ridB, "oldVisitorId": f.rcVisitorB, "newVisitorId": f.rcVisitorB}, rcFail(403, "unauthorized")},
		{"GET omnichannel/contact", "GET", "omnichannel/contact?contactId=" + f.rcVisitorB, nil, rcAsUnknown()},
		{"POST omnichannel/contact", "POST", "omnichannel/contact", map[string]any{"token": f.tokB, "name": "intrude"}, rcFail(403, "unauthorized")},
		{"GET livechat/rooms", "GET", "livechat/rooms", nil, status(200)}, // B's room absent: the secret check
		{"GET omnichannel/contact.search", "GET", "omnichannel/contact.search?email=" + url.QueryEscape(f.tokB+"@example.com"), nil, rcAsUnknown()},
	} {
		row := rc(r.key, "other agent on B's room", r.method, r.path, r.body, r.want)
		row.hdr = carlHdr
		add(row)
	}

	// Rocket.Chat DDP methods: A's token against B's room, forged tokens.
	m := func(name, probe string, want authzWant, params ...any) authzRow {
		return authzRow{covers: []string{keyDDP, "rocketchat method " + name}, probe: probe, kind: viaDDPMethod, action: name, params: params, want: want}
	}
	isFalse := func(v any) bool { return v == false }
	isNil := func(v any) bool { return v == nil }
	add(
		m("livechat:setUpConnection", "forged token (accepted: the connection only remembers it)", ddpResult("any", func(any) bool { return true }), map[string]any{"token": forged}),
		m("stream-notify-room", "A's token typing into B's room (dropped)", ddpResult("any", func(any) bool { return true }), f.ridB+"/typing", "A", true, map[string]any{"token": f.tokA}),
		m("livechat:getInitialData", "forged token: no visitor, no room", ddpResult("without visitor/room", func(v any) bool {
			mm, _ := v.(map[string]any)
			return mm != nil && mm["visitor"] == nil && mm["room"] == nil
		}), forged),
		m("livechat:registerGuest", "public (registers the caller's own token)", ddpResult("a visitor", func(v any) bool { return v != nil }), map[string]any{"token": "ddp-token-visitor-d-04", "name": "Di"}),
		m("sendMessageLivechat", "A's token, B's rid", meteor("cannot-access-room"), map[string]any{"_id": "ddp-msg-x1", "rid": f.ridB, "msg": "intrude", "token": f.tokA}),
		m("sendMessageLivechat", "forged token", meteor("invalid-token"), map[string]any{"_id": "ddp-msg-x2", "rid": f.ridB, "msg": "intrude", "token": forged}),
		m("livechat:getAgentData", "A's token, B's rid", meteor("error-invalid-room"), map[string]any{"roomId": f.ridB, "token": f.tokA}),
		m("livechat:loginByToken", "forged token", ddpResult("no result", isNil), forged),
		// As REST page.visited (and Rocket.Chat): no error, nothing stored.
		m("livechat:pageVisited", "A's token, B's rid (nothing stored)", ddpResult("no result", isNil), f.tokA, f.ridB, map[string]any{"change": "url", "title": "t", "location": map[string]any{"href": "h"}}),
		m("livechat:closeByVisitor", "A's token, B's rid", ddpResult("false", isFalse), map[string]any{"roomId": f.ridB, "token": f.tokA}),
		m("livechat:setCustomField", "forged token", meteor("invalid-token"), forged, "k", "v"),
		m("livechat:setDepartmentForVisitor", "A's token, B's rid", meteor("error-invalid-room"), map[string]any{"roomId": f.ridB, "visitorToken": f.tokA, "departmentId": "0"}),
		m("livechat:getNextAgent", "public (forged token: the next agent only)", ddpResult("an agent", func(v any) bool { return v != nil }), map[string]any{"token": forged}),
		m("livechat:loadHistory", "A's token, B's rid", meteor("invalid-room"), map[string]any{"token": f.tokA, "rid": f.ridB}),
		m("livechat:loadHistory", "forged token", meteor("invalid-visitor"), map[string]any{"token": forged, "rid": f.ridB}),
		m("livechat:sendOfflineMessage", "public (stored as a new closed conversation)", ddpResult("any", func(any) bool { return true }), map[string]any{"name": "N", "email": "n@example.com", "message": "m"}),
		m("livechat:saveSurveyFeedback", "A's token, B's rid", ddpResult("no result", isNil), f.tokA, f.ridB, []any{map[string]any{"name": "satisfaction", "value": "5"}}),
		m("livechat:startFileUploadRoom", "A's token, B's rid", meteor("cannot-access-room"), f.ridB, f.tokA),
		m("livechat:startFileUploadRoom", "forged token", meteor("invalid-token"), f.ridB, forged),
		m("livechat:transfer", "visitor connection (agents only)", meteor("error-not-allowed"), map[string]any{"roomId": f.ridB}),
		m("UserPresence:connect", "forged token (ignored)", ddpResult("no result", isNil), map[string]any{"visitor": forged}),
		m("UserPresence:online", "forged token (ignored)", ddpResult("no result", isNil), map[string]any{"visitor": forged}),
		m("UserPresence:away", "forged token (ignored)", ddpResult("no result", isNil), map[string]any{"visitor": forged}),
	)
	// DDP subscriptions.
	s := func(name, probe string, params ...any) authzRow {
		return authzRow{covers: []string{keyDDP, "rocketchat sub " + name}, probe: probe, kind: viaDDPSub, action: name, params: params, want: nosub("not-allowed")}
	}
	opts := func(tok string) map[string]any {
		return map[string]any{"useCollection": false, "args": []any{map[string]any{"token": tok}}}
	}
	for _, name := range []string{"stream-room-messages", "stream-livechat-room"} {
		add(s(name, "A's token, B's rid", f.ridB, opts(f.tokA)),
			s(name, "no token", f.ridB, false),
			s(name, "forged token", f.ridB, opts(forged)),
			s(name, "A's token, unknown rid", "no-such-room", opts(f.tokA)))
	}
	add(s("stream-notify-room", "A's token, B's typing", f.ridB+"/typing", opts(f.tokA)),
		s("stream-notify-room", "A's token, B's deleteMessage", f.ridB+"/deleteMessage", opts(f.tokA)),
		s("stream-notify-room", "no token", f.ridB+"/typing", false))
	// The SockJS websocket paths and /sockjs/info are the same DDP server.
	add(authzRow{covers: []string{"GET /sockjs/info"}, probe: "public (SockJS info)", method: "GET", path: "/sockjs/info", want: status(200)})

	// LiveChat customer: RTM without login, with forged, expired and agent
	// tokens; the Web API likewise; A against B's chat.
	custWeb := func(action, probe string, hdr map[string]string, payload any, want authzWant) authzRow {
		return authzRow{covers: []string{keyCustWeb, "livechat.customer action " + action}, probe: probe, method: "POST",
			path: "/v3.5/customer/action/" + action + "?organization_id=" + authzOrg, hdr: hdr, body: jsonBody(payload), want: want}
	}
	custRTM := func(action, probe, login string, payload any, want authzWant) authzRow {
		return authzRow{covers: []string{keyCustWS, "livechat.customer action " + action}, probe: probe, kind: viaCustomerRTM,
			login: login, action: action, payload: payload, want: want}
	}
	forgedBearer := strings.Repeat("ab", 32)
	chatB := map[string]any{"chat_id": f.chatB}
	props := map[string]any{"rating": map[string]any{"score": 1}}
	propNames := map[string]any{"rating": []any{"score"}}
	custActions := []struct {
		name  string
		cross any // payload naming B's chat; nil: the action has no chat to name
	}{
		{"start_chat", nil},
		{"resume_chat", map[string]any{"chat": map[string]any{"id": f.chatB}}},
		{"send_event", map[string]any{"chat_id": f.chatB, "event": map[string]any{"type": "message", "text": "intrude"}}},
		{"get_chat", map[string]any{"chat_id": f.chatB, "thread_id": f.threadB}},
		{"list_chats", nil},
		{"list_threads", chatB},
		{"deactivate_chat", map[string]any{"id": f.chatB}},
		{"update_customer", nil},
		{"set_customer_session_fields", nil},
		{"get_customer", nil},
		{"send_sneak_peek", map[string]any{"chat_id": f.chatB, "sneak_peek_text": "x"}},
		{"mark_events_as_seen", map[string]any{"chat_id": f.chatB, "seen_up_to": "2030-01-01T00:00:00.000000Z"}},
		{"update_chat_properties", map[string]any{"id": f.chatB, "properties": props}},
		{"delete_chat_properties", map[string]any{"id": f.chatB, "properties": propNames}},
		{"update_thread_properties", map[string]any{"chat_id": f.chatB, "thread_id": f.threadB, "properties": props}},
		{"delete_thread_properties", map[string]any{"chat_id": f.chatB, "thread_id": f.threadB, "properties": propNames}},
		{"update_event_properties", map[string]any{"chat_id": f.chatB, "thread_id": f.threadB, "event_id": f.eventB, "properties": props}},
		{"delete_event_properties", map[string]any{"chat_id": f.chatB, "thread_id": f.threadB, "event_id": f.eventB, "properties": propNames}},
		{"list_group_statuses", nil},
		{"get_form", nil},
		{"get_predicted_agent", nil},
		{"check_goals", nil},
		{"accept_greeting", nil},
		{"cancel_greeting", nil},
	}
	for _, a := range custActions {
		add(custRTM(a.name, "no login", "", map[string]any{}, rtmErr("authentication")),
			custWeb(a.name, "no Authorization", nil, map[string]any{}, lcWeb(401, "authentication")),
			custWeb(a.name, "forged token", bearer(forgedBearer), map[string]any{}, lcWeb(401, "authentication")),
			custWeb(a.name, "agent token", bearer(f.agentToken), map[string]any{}, lcWeb(401, "authentication")))
		ex := custWeb(a.name, "expired token", bearer(f.ctExpired), map[string]any{}, lcWeb(401, "authentication"))
		ex.expiredGW = true
		add(ex)
		if a.cross != nil {
			add(custRTM(a.name, "A on B's chat", f.ctA, a.cross, rtmErr("not_found")),
				custWeb(a.name, "A on B's chat", bearer(f.ctA), a.cross, lcWeb(404, "not_found")))
		}
	}
	add(custRTM("login", "forged token", "", map[string]any{"token": "Bearer " + forgedBearer}, rtmErr("authentication")),
		custRTM("login", "agent token", "", map[string]any{"token": "Bearer " + f.agentToken}, rtmErr("authentication")),
		authzRow{covers: []string{keyCustWS, "livechat.customer action login"}, probe: "expired token", kind: viaCustomerRTM, expiredGW: true,
			action: "login", payload: map[string]any{"token": "Bearer " + f.ctExpired}, want: rtmErr("authentication")},
		custRTM("ping", "public (no login needed)", "", map[string]any{}, func(r authzResult) error {
			if r.m["success"] != true {
				return fmt.Errorf("want ping success, got %s", r.raw)
			}
			return nil
		}),
		custWeb("upload_file", "no Authorization", nil, map[string]any{}, lcWeb(401, "authentication")),
		custWeb("upload_file", "forged token", bearer(forgedBearer), map[string]any{}, lcWeb(401, "authentication")),
		authzRow{covers: []string{keyCustWS}, probe: "wrong organization_id", kind: viaCustomerRTM, path: "/v3.5/customer/rtm/ws?organization_id=other",
			want: rtmPush("customer_disconnected", "license_not_found")},
		authzRow{covers: []string{keyCustWeb}, probe: "wrong organization_id", method: "POST", path: "/v3.5/customer/action/get_customer?organization_id=other",
			hdr: bearer(f.ctA), body: "{}", want: lcWeb(404, "license_not_found")},
		authzRow{covers: []string{"OPTIONS /v3.x/customer/action/:action"}, probe: "public (CORS preflight)", method: "OPTIONS",
			path: "/v3.5/customer/action/get_chat", want: status(204)},
		authzRow{covers: []string{"OPTIONS /v2/customer/token"}, probe: "public (CORS preflight)", method: "OPTIONS", path: "/v2/customer/token", want: status(204)},
		// The licence's configuration, as LiveChat serves it before login.
		authzRow{covers: []string{"GET /v3.x/customer/action/:action"}, probe: "public (configuration before login)", method: "GET",
			path: "/v3.5/customer/action/get_dynamic_configuration?organization_id=" + authzOrg, want: status(200)},
		authzRow{covers: []string{"GET /v3.x/customer/action/:action"}, probe: "wrong organization_id", method: "GET",
			path: "/v3.5/customer/action/get_configuration?organization_id=other", want: lcWeb(404, "license_not_found")},
		authzRow{covers: []string{"GET /v3.x/customer/action/:action"}, probe: "a token action by GET", method: "GET",
			path: "/v3.5/customer/action/get_chat?organization_id=" + authzOrg + "&chat_id=" + f.chatB, want: func(r authzResult) error {
				if r.status < 400 || r.status >= 500 {
					return fmt.Errorf("want a 4xx refusal, got %d %.200s", r.status, r.raw)
				}
				return nil
			}},
	)
	// Issue 16, Medium 5 and 6: files. A customer without a chat cannot
	// upload; a file event names only the sender's own upload (B's file,
	// javascript: and data: URLs are refused).
	upNoChat, upNoChatType := multipartFile("x.txt", "x")
	add(authzRow{covers: []string{keyCustWeb, "livechat.customer action upload_file"}, probe: "customer without a chat", method: "POST",
		path: "/v3.5/customer/action/upload_file?organization_id=" + authzOrg, hdr: bearer(f.ctNoChat), body: upNoChat, ctype: upNoChatType,
		want: lcWeb(422, "chat_inactive")})
	for _, u := range []struct{ probe, url string }{
		{"A sends B's upload as a file event", f.fileURL},
		{"A sends a javascript: URL as a file", "javascript:alert(document.cookie)"},
		{"A sends a data: URL as a file", "data:text/html,<script>alert(1)</script>"},
	} {
		add(custWeb("send_event", u.probe, bearer(f.ctA), map[string]any{"chat_id": f.chatA, "event": map[string]any{"type": "file", "url": u.url, "name": "x"}},
			lcWeb(400, "validation")))
	}
	// Issue 16, Low 9: a v2 start for B's visitor id without B's
	// secured_session_id does not end B's chat (checked again at the end).
	add(authzRow{covers: []string{keyV2Start}, probe: "B's visitor id without B's secured_session_id", method: "POST", path: "/visitors/" + f.v2B + "/chat/start",
		hdr: v2hdr, body: url.Values{"licence_id": {testLicence}, "welcome_message": {"x"}}.Encode(), ctype: formCT, want: v2Err(400)},
		authzRow{covers: []string{keyV2Start}, probe: "B's visitor id with A's secured_session_id", method: "POST", path: "/visitors/" + f.v2B + "/chat/start",
			hdr: v2hdr, body: url.Values{"licence_id": {testLicence}, "welcome_message": {"x"}, "secured_session_id": {f.sidA}}.Encode(), ctype: formCT, want: v2Err(400)})

	// A's token listing chats sees its own only (no refusal: the secret
	// check below proves B's chat is absent).
	add(custWeb("list_chats", "A lists chats (B's absent)", bearer(f.ctA), map[string]any{}, status(200)),
		custWeb("get_customer", "A reads itself (B's profile absent)", bearer(f.ctA), map[string]any{}, status(200)))

	// /v2/customer/token.
	tok := func(probe string, hdr map[string]string, body string, want authzWant) authzRow {
		return authzRow{covers: []string{keyToken}, probe: probe, method: "POST", path: "/v2/customer/token", hdr: hdr, body: body, want: want}
	}
	add(tok("agent_token grant without Authorization", nil, `{"grant_type":"agent_token"}`, lcToken(401, "identity_exception")),
		tok("agent_token grant, forged agent token", bearer(forgedBearer), `{"grant_type":"agent_token"}`, lcToken(401, "identity_exception")),
		tok("agent_token grant, customer token as agent token", bearer(f.ctA), jsonBody(map[string]any{"grant_type": "agent_token", "entity_id": f.chatB}), lcToken(401, "identity_exception")),
		tok("agent_token grant, unknown entity", bearer(f.agentToken), `{"grant_type":"agent_token","entity_id":"nobody"}`, lcToken(401, "identity_exception")),
		tok("forged cookie makes a new customer, not B", map[string]string{"Cookie": "__lc_cid=" + strings.Repeat("0", 32) + "; __lc_cst=" + strings.Repeat("1", 32)}, `{"grant_type":"cookie"}`,
			func(r authzResult) error {
				if r.status != 200 || r.m["entity_id"] == f.chatB || r.m["entity_id"] == f.chatA || r.m["entity_id"] == nil {
					return fmt.Errorf("want a new customer, got %d %s", r.status, r.raw)
				}
				return nil
			}),
		tok("wrong organization", nil, `{"grant_type":"cookie","organization_id":"other"}`, lcToken(400, "identity_exception")),
		// Issue 16, High 1: an agent gets a token only for a customer it
		// may reach (or as an administrator).
		tok("agent_token grant, other department's agent for B", bearer(otherAgentToken), jsonBody(map[string]any{"grant_type": "agent_token", "entity_id": f.chatB}), lcToken(401, "identity_exception")),
		tok("agent_token grant, other department's agent for A", bearer(otherAgentToken), jsonBody(map[string]any{"grant_type": "agent_token", "entity_id": f.chatA}), lcToken(401, "identity_exception")),
		tok("agent_token grant, B's serving agent (allowed)", bearer(f.agentToken), jsonBody(map[string]any{"grant_type": "agent_token", "entity_id": f.chatB}), status(200)),
		tok("agent_token grant, administrator (allowed)", bearer(adminAgentToken), jsonBody(map[string]any{"grant_type": "agent_token", "entity_id": f.chatB}), status(200)),
		tok("agent_token grant, new customer (allowed)", bearer(otherAgentToken), `{"grant_type":"agent_token"}`, status(200)),
		// Issue 16, High 3: a foreign web site cannot turn the visitor's
		// cookies into a token, nor read any answer.
		tok("cookie grant from a foreign origin", map[string]string{"Origin": foreignOrigin}, `{"grant_type":"cookie"}`, noCORS(lcToken(403, "identity_exception"))),
		tok("cookie grant from an allowed origin", map[string]string{"Origin": shopOrigin}, `{"grant_type":"cookie"}`, withCORS(shopOrigin, status(200))),
		tok("unknown client_id", nil, `{"grant_type":"cookie","client_id":"other-client"}`, lcToken(400, "identity_exception")),
		authzRow{covers: []string{"OPTIONS /v2/customer/token"}, probe: "CORS preflight from a foreign origin", method: "OPTIONS", path: "/v2/customer/token",
			hdr: map[string]string{"Origin": foreignOrigin, "Access-Control-Request-Method": "POST"}, want: noCORS(status(204))},
		authzRow{covers: []string{"OPTIONS /v3.x/customer/action/:action"}, probe: "CORS preflight from a foreign origin", method: "OPTIONS", path: "/v3.5/customer/action/list_threads",
			hdr: map[string]string{"Origin": foreignOrigin, "Access-Control-Request-Method": "POST"}, want: noCORS(status(204))},
		authzRow{covers: []string{"OPTIONS /v3.x/customer/action/:action"}, probe: "CORS preflight from an allowed origin", method: "OPTIONS", path: "/v3.5/customer/action/list_threads",
			hdr: map[string]string{"Origin": shopOrigin, "Access-Control-Request-Method": "POST"}, want: withCORS(shopOrigin, status(204))},
		custWeb("list_threads", "B's own token from a foreign origin: no CORS", map[string]string{"Authorization": "Bearer " + f.ctB, "Origin": foreignOrigin},
			map[string]any{"chat_id": f.chatA}, noCORS(lcWeb(404, "not_found"))),
	)

	// LiveChat agent RTM and Web API: every action without credentials,
	// with a forged token and with a customer token.
	agentWeb := func(action, probe string, hdr map[string]string, want authzWant) authzRow {
		return authzRow{covers: []string{keyAgentWeb, "livechat.agent.rtm action " + action}, probe: probe, method: "POST",
			path: "/v3.5/agent/action/" + action, hdr: hdr, body: "{}", want: want}
	}
	for _, a := range agentActions {
		add(agentWeb(a, "no Authorization", nil, lcWeb(401, "authentication")),
			agentWeb(a, "forged token", bearer(forgedBearer), lcWeb(401, "authentication")),
			agentWeb(a, "customer token", bearer(f.ctA), lcWeb(401, "authentication")),
			agentWeb(a, "Rocket.Chat agent token", bearer(f.rcToken), lcWeb(401, "authentication")))
		if a != "upload_file" {
			add(authzRow{covers: []string{keyAgentWS, "livechat.agent.rtm action " + a}, probe: "no login", kind: viaAgentRTM,
				action: a, payload: map[string]any{}, want: rtmErr("authentication")})
		}
	}
	// The other agent (Carl) against visitor B's chat, which Jane serves in
	// a department Carl does not serve: not_found, as for a chat that does
	// not exist.
	carl := bearer(otherAgentToken)
	thread := map[string]any{"chat_id": f.chatB, "thread_id": f.threadB}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	for _, a := range []struct {
		name    string
		payload map[string]any
		want    authzWant
	}{
		{"get_chat", thread, lcWeb(404, "not_found")},
		{"list_threads", map[string]any{"chat_id": f.chatB}, lcWeb(404, "not_found")},
		{"send_event", map[string]any{"chat_id": f.chatB, "event": map[string]any{"type": "message", "text": "intrude"}}, lcWeb(404, "not_found")},
		{"deactivate_chat", map[string]any{"id": f.chatB}, lcWeb(404, "not_found")},
		{"transfer_chat", map[string]any{"id": f.chatB, "target": map[string]any{"type": "agent", "ids": []any{"carl@example.com"}}}, lcWeb(404, "not_found")},
		{"tag_thread", with(thread, "tag", "x"), lcWeb(404, "not_found")},
		{"untag_thread", with(thread, "tag", "x"), lcWeb(404, "not_found")},
		{"follow_chat", map[string]any{"id": f.chatB}, lcWeb(404, "not_found")},
		{"unfollow_chat", map[string]any{"id": f.chatB}, lcWeb(404, "not_found")},
		{"get_customer", map[string]any{"id": f.chatB}, lcWeb(404, "not_found")},
		{"update_customer", map[string]any{"id": f.chatB, "name": "intrude"}, lcWeb(404, "not_found")},
		{"ban_customer", map[string]any{"id": f.chatB, "ban": map[string]any{"days": 1}}, lcWeb(404, "not_found")},
		{"mark_events_as_seen", map[string]any{"chat_id": f.chatB, "seen_up_to": "2030-01-01T00:00:00.000000Z"}, lcWeb(404, "not_found")},
		{"send_typing_indicator", map[string]any{"chat_id": f.chatB, "is_typing": true}, lcWeb(404, "not_found")},
		{"resume_chat", map[string]any{"chat": map[string]any{"id": f.chatB}}, lcWeb(404, "not_found")},
		// Any agent may start a chat with an existing customer (in a
		// department it serves); that B's chat is active is no secret to it.
		{"start_chat", map[string]any{"chat": map[string]any{"users": []any{map[string]any{"id": f.chatB, "type": "customer"}}, "access": map[string]any{"group_ids": []int{2}}}}, lcWeb(400, "validation")},
		{"add_user_to_chat", map[string]any{"chat_id": f.chatB, "user_id": "carl@example.com", "user_type": "agent", "visibility": "all"}, lcWeb(404, "not_found")},
		{"remove_user_from_chat", map[string]any{"chat_id": f.chatB, "user_id": "jane@example.com", "user_type": "agent"}, lcWeb(404, "not_found")},
		{"list_agents_for_transfer", map[string]any{"chat_id": f.chatB}, lcWeb(404, "not_found")},
		{"set_routing_status", map[string]any{"status": "not_accepting_chats", "agent_id": "jane@example.com"}, lcWeb(403, "authorization")},
		{"update_chat_properties", map[string]any{"id": f.chatB, "properties": props}, lcWeb(404, "not_found")},
		{"delete_chat_properties", map[string]any{"id": f.chatB, "properties": propNames}, lcWeb(404, "not_found")},
		{"update_thread_properties", with(thread, "properties", props), lcWeb(404, "not_found")},
		{"delete_thread_properties", with(thread, "properties", propNames), lcWeb(404, "not_found")},
		{"update_event_properties", with(thread, "event_id", f.eventB, "properties", props), lcWeb(404, "not_found")},
		{"delete_event_properties", with(thread, "event_id", f.eventB, "properties", propNames), lcWeb(404, "not_found")},
		{"list_chats", map[string]any{}, status(200)},    // B's chat absent: the secret check
		{"list_archives", map[string]any{}, status(200)}, // likewise
	} {
		row := agentWeb(a.name, "other agent on B's chat", carl, a.want)
		row.body = jsonBody(a.payload)
		add(row)
	}
	// Other agents' chats are for supervisors: a plain agent of department
	// 0 gets not_found for the chat Jane serves there, and its list_chats
	// and list_archives leave it out; a supervisor of department 0 reads it.
	nina := bearer(sameDeptAgentToken)
	served := map[string]any{"chat_id": f.servedB, "thread_id": f.servedThreadB}
	hidden := func(want authzWant) authzWant {
		return func(r authzResult) error {
			if strings.Contains(string(r.raw), servedSecret) || strings.Contains(string(r.raw), f.servedB) {
				return fmt.Errorf("answer shows the other agent's chat: %.300s", r.raw)
			}
			return want(r)
		}
	}
	for _, a := range []struct {
		name    string
		payload map[string]any
		want    authzWant
	}{
		{"get_chat", served, lcWeb(404, "not_found")},
		{"list_threads", map[string]any{"chat_id": f.servedB}, lcWeb(404, "not_found")},
		{"send_event", map[string]any{"chat_id": f.servedB, "event": map[string]any{"type": "message", "text": "intrude"}}, lcWeb(404, "not_found")},
		{"deactivate_chat", map[string]any{"id": f.servedB}, lcWeb(404, "not_found")},
		{"transfer_chat", map[string]any{"id": f.servedB, "target": map[string]any{"type": "agent", "ids": []any{"nina@example.com"}}}, lcWeb(404, "not_found")},
		{"add_user_to_chat", map[string]any{"chat_id": f.servedB, "user_id": "nina@example.com", "user_type": "agent", "visibility": "agents"}, lcWeb(404, "not_found")},
		{"list_chats", map[string]any{}, status(200)},
		{"list_archives", map[string]any{}, status(200)},
	} {
		row := agentWeb(a.name, "same-department agent, not a supervisor, on another agent's chat", nina, hidden(a.want))
		row.body = jsonBody(a.payload)
		add(row)
	}
	seesIt := func(r authzResult) error {
		if r.status != 200 || !strings.Contains(string(r.raw), servedSecret) {
			return fmt.Errorf("want 200 with the other agent's chat, got %d %.200s", r.status, r.raw)
		}
		return nil
	}
	for _, a := range []struct {
		name    string
		payload map[string]any
	}{{"get_chat", served}, {"list_chats", map[string]any{}}} {
		row := agentWeb(a.name, "supervisor of the department, on another agent's chat (allowed)", bearer(supervisorToken), seesIt)
		row.body = jsonBody(a.payload)
		add(row)
	}
	agentLogin := func(probe, tok string) authzRow {
		return authzRow{covers: []string{keyAgentWS, "livechat.agent.rtm action login"}, probe: probe, kind: viaAgentRTM,
			action: "login", payload: map[string]any{"token": tok}, want: rtmErr("authentication")}
	}
	add(agentLogin("forged token", "Bearer "+forgedBearer), agentLogin("customer token", "Bearer "+f.ctA),
		agentLogin("token without Bearer", f.agentToken),
		authzRow{covers: []string{keyAgentWS, "livechat.agent.rtm action ping"}, probe: "public (no login needed)", kind: viaAgentRTM,
			action: "ping", payload: map[string]any{}, want: func(r authzResult) error {
				if r.m["success"] != true {
					return fmt.Errorf("want ping success, got %s", r.raw)
				}
				return nil
			}},
		agentWeb("login", "RTM only", bearer(f.agentToken), lcWeb(400, "validation")),
		agentWeb("ping", "RTM only", bearer(f.agentToken), lcWeb(400, "validation")),
	)

	// Configuration API.
	conf := func(action, probe string, hdr map[string]string, want authzWant) authzRow {
		return authzRow{covers: []string{keyConfWeb, "livechat.webhooks action " + action}, probe: probe, method: "POST",
			path: "/v3.5/configuration/action/" + action, hdr: hdr, body: "{}", want: want}
	}
	for _, a := range configActions {
		add(conf(a, "no Authorization", nil, lcWeb(401, "authentication")),
			conf(a, "forged token", bearer(forgedBearer), lcWeb(401, "authentication")),
			conf(a, "customer token", bearer(f.ctA), lcWeb(401, "authentication")),
			// Issue 16, High 2: the Configuration API is administrators'.
			conf(a, "agent, not an administrator", bearer(f.agentToken), lcWeb(403, "authorization")),
			conf(a, "other department's agent, not an administrator", bearer(otherAgentToken), lcWeb(403, "authorization")))
	}
	adminList := conf("list_webhooks", "administrator (allowed)", bearer(adminAgentToken), status(200))
	adminList.body = `{"owner_client_id":"authz"}`
	add(adminList,
		authzRow{covers: []string{keyConfGET}, probe: "agent, not an administrator", method: "GET", path: "/v3.5/configuration/action/list_webhook_failures", hdr: bearer(f.agentToken), want: lcWeb(403, "authorization")})
	add(conf("list_webhook_names", "public (static list)", nil, status(200)),
		authzRow{covers: []string{keyConfGET}, probe: "no Authorization", method: "GET", path: "/v3.5/configuration/action/list_webhook_failures", want: lcWeb(401, "authentication")},
		authzRow{covers: []string{keyConfGET}, probe: "forged token", method: "GET", path: "/v3.5/configuration/action/list_webhook_failures", hdr: bearer(forgedBearer), want: lcWeb(401, "authentication")})

	// Files: the id is the capability.
	fu, err := url.Parse(f.fileURL)
	if err != nil {
		panic(err)
	}
	add(authzRow{covers: []string{keyFiles}, probe: "forged id", method: "GET", path: "/file-upload/" + strings.Repeat("0", 32) + "/b.txt", want: rcNotFoundAny()},
		authzRow{covers: []string{keyFiles}, probe: "malformed id", method: "GET", path: "/file-upload/..%2f..%2fetc/passwd", want: rcNotFoundAny()},
		authzRow{covers: []string{keyFiles}, probe: "public to whoever holds the URL (capability)", method: "GET", path: fu.Path, want: status(200), reveals: true})

	// The relay view: any agent's bearer token (support staff); nothing
	// else opens it.
	for _, p := range []struct{ key, path string }{
		{"GET /relay/conversations", "/relay/conversations"},
		{"GET /relay/conversations/:id", "/relay/conversations/" + f.ridB},
	} {
		unauth := func(r authzResult) error {
			if r.status != 401 || r.m["error"] == nil || strings.Contains(string(r.raw), "conversations\"") {
				return fmt.Errorf("want 401 {\"error\":…}, got %d %.200s", r.status, r.raw)
			}
			return nil
		}
		add(authzRow{covers: []string{p.key}, probe: "no Authorization", method: "GET", path: p.path, want: unauth},
			authzRow{covers: []string{p.key}, probe: "forged token", method: "GET", path: p.path, hdr: bearer(forgedBearer), want: unauth},
			authzRow{covers: []string{p.key}, probe: "customer token", method: "GET", path: p.path, hdr: bearer(f.ctA), want: unauth},
			authzRow{covers: []string{p.key}, probe: "Rocket.Chat visitor token", method: "GET", path: p.path, hdr: bearer(f.tokA), want: unauth})
	}

	// The operator view's JSON: an admin agent's bearer token only (the
	// fixture has no admin: Jane's own token is refused with 403).
	for _, p := range []struct{ key, method, path string }{
		{"GET /console/api/ops", "GET", "/console/api/ops"},
		{"POST /console/api/ops/retry_webhooks", "POST", "/console/api/ops/retry_webhooks"},
		{"POST /console/api/ops/revive_webhooks", "POST", "/console/api/ops/revive_webhooks"},
	} {
		refused := func(code int) authzWant {
			return func(r authzResult) error {
				if r.status != code || r.m["error"] == nil || strings.Contains(string(r.raw), "agents\"") || strings.Contains(string(r.raw), "retried") || strings.Contains(string(r.raw), "revived") {
					return fmt.Errorf("want %d {\"error\":…}, got %d %.200s", code, r.status, r.raw)
				}
				return nil
			}
		}
		add(authzRow{covers: []string{p.key}, probe: "no Authorization", method: p.method, path: p.path, want: refused(401)},
			authzRow{covers: []string{p.key}, probe: "forged token", method: p.method, path: p.path, hdr: bearer(forgedBearer), want: refused(401)},
			authzRow{covers: []string{p.key}, probe: "customer token", method: p.method, path: p.path, hdr: bearer(f.ctA), want: refused(401)},
			authzRow{covers: []string{p.key}, probe: "Rocket.Chat visitor token", method: p.method, path: p.path, hdr: bearer(f.tokA), want: refused(401)},
			authzRow{covers: []string{p.key}, probe: "agent who is not an admin", method: p.method, path: p.path, hdr: bearer(f.agentToken), want: refused(403)})
	}
	// The console's password login: a wrong password (or a token as the
	// password) gets 401 and no token.
	loginRefused := func(r authzResult) error {
		if r.status != 401 || r.m["error"] == nil || r.m["token"] != nil {
			return fmt.Errorf("want 401 without a token, got %d %.200s", r.status, r.raw)
		}
		return nil
	}
	add(authzRow{covers: []string{"POST /console/api/login"}, probe: "wrong password", method: "POST", path: "/console/api/login",
		body: jsonBody(map[string]string{"user": "jane@example.com", "password": "not-her-password"}), want: loginRefused},
		authzRow{covers: []string{"POST /console/api/login"}, probe: "another agent's password", method: "POST", path: "/console/api/login",
			body: jsonBody(map[string]string{"user": "jane@example.com", "password": otherAgentPassword}), want: loginRefused},
		authzRow{covers: []string{"POST /console/api/login"}, probe: "token as password", method: "POST", path: "/console/api/login",
			body: jsonBody(map[string]string{"user": "jane@example.com", "password": agentToken}), want: loginRefused})

	// Operational and widget assets: public by design.
	for _, p := range []struct{ key, path string }{
		{"GET /healthz", "/healthz"}, {"GET /readyz", "/readyz"}, {"GET /metrics", "/metrics"},
		{"GET /livechat", "/livechat"}, {"GET /livechat/*file", "/livechat/nope.js"},
		{"GET /avatar/:username", "/avatar/jane"}, {"GET /sounds/chime.mp3", "/sounds/chime.mp3"},
		// chatgate's pages (static; every datum behind them needs credentials).
		{"GET /", "/"}, {"GET /console", "/console"}, {"GET /console/ops", "/console/ops"}, {"GET /demo", "/demo"},
		{"GET /console/static/*file", "/console/static/console.js"},
	} {
		add(authzRow{covers: []string{p.key}, probe: "public", method: "GET", path: p.path, want: func(r authzResult) error {
			if r.status >= 500 || r.status == 401 || r.status == 403 {
				return fmt.Errorf("public route answered %d", r.status)
			}
			return nil
		}})
	}
	// SockJS variants of the DDP socket: the same server; one forged-token
	// subscription through each.
	for _, p := range []struct{ key, path string }{
		{"GET /sockjs/websocket", "/sockjs/websocket"},
		{"GET /sockjs/:server/:session/websocket", "/sockjs/123/abcdefgh/websocket"},
	} {
		row := s("stream-room-messages", "forged token via "+p.path, f.ridB, opts(forged))
		row.covers = []string{p.key}
		row.path = p.path
		add(row)
	}
	return rows
}

// noCORS: no credentialed CORS grant for the request's origin, besides want.
func noCORS(want authzWant) authzWant {
	return func(r authzResult) error {
		if o := r.header.Get("Access-Control-Allow-Origin"); o != "" && o != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			return fmt.Errorf("CORS granted to a foreign origin: %v", r.header)
		}
		return want(r)
	}
}

// withCORS: a credentialed CORS grant for origin, besides want.
func withCORS(origin string, want authzWant) authzWant {
	return func(r authzResult) error {
		if r.header.Get("Access-Control-Allow-Origin") != origin || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			return fmt.Errorf("want CORS for %s, got %v", origin, r.header)
		}
		return want(r)
	}
}

// rcAsUnknown: a Rocket.Chat agent read answering as for an unknown
// contact: {"success":true} and nothing else.
func rcAsUnknown() authzWant {
	return func(r authzResult) error {
		if r.status != 200 || len(r.m) != 1 || r.m["success"] != true {
			return fmt.Errorf("want 200 {\"success\":true}, got %d %s", r.status, r.raw)
		}
		return nil
	}
}

// rcNotFoundAny: a 404 in JSON (the files route answers the gateway's or
// the widget host's 404 body).
func rcNotFoundAny() authzWant {
	return func(r authzResult) error {
		if r.status != 404 || !json.Valid(r.raw) {
			return fmt.Errorf("want JSON 404, got %d %.200s", r.status, r.raw)
		}
		return nil
	}
}

// --- running rows ----------------------------------------------------------------------

type wsConn struct {
	t      *testing.T
	conn   *websocket.Conn
	sockjs bool     // SockJS framing: "o", a["<json>", …] in; ["<json>"] out
	queue  [][]byte // SockJS frames unpacked but not yet read
}

func dialWS(t *testing.T, u string) *wsConn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	return &wsConn{t: t, conn: conn}
}

func (w *wsConn) send(v any) {
	w.t.Helper()
	if w.sockjs {
		b, err := json.Marshal(v)
		if err != nil {
			w.t.Fatal(err)
		}
		v = []string{string(b)}
	}
	if err := w.conn.WriteJSON(v); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// await returns the first frame for which match is true.
func (w *wsConn) await(match func(map[string]any) bool) ([]byte, map[string]any) {
	w.t.Helper()
	_ = w.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var b []byte
		if len(w.queue) > 0 {
			b, w.queue = w.queue[0], w.queue[1:]
		} else {
			_, raw, err := w.conn.ReadMessage()
			if err != nil {
				w.t.Fatalf("read: %v", err)
			}
			if w.sockjs {
				var msgs []string
				if len(raw) > 0 && raw[0] == 'a' && json.Unmarshal(raw[1:], &msgs) == nil {
					for _, s := range msgs {
						w.queue = append(w.queue, []byte(s))
					}
				}
				continue
			}
			b = raw
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue // SockJS framing ("o", "a[...]") is not used on raw websocket paths
		}
		if match(m) {
			return b, m
		}
	}
}

func runRTM(t *testing.T, url string, login string, action string, payload any) authzResult {
	t.Helper()
	w := dialWS(t, url)
	defer w.conn.Close()
	if login != "" {
		w.send(map[string]any{"request_id": "login", "action": "login", "payload": map[string]any{"token": "Bearer " + login}})
		raw, m := w.await(func(m map[string]any) bool {
			return m["request_id"] == "login" || m["type"] == "push" && m["request_id"] == nil && strings.HasSuffix(m["action"].(string), "_disconnected")
		})
		if m["success"] != true {
			t.Fatalf("setup login: %s", raw)
		}
	}
	if action == "" {
		raw, m := w.await(func(m map[string]any) bool { return m["type"] == "push" })
		return authzResult{raw: raw, m: m}
	}
	w.send(map[string]any{"request_id": "probe", "action": action, "payload": payload})
	raw, m := w.await(func(m map[string]any) bool {
		return m["request_id"] == "probe" && m["type"] == "response" || m["type"] == "push" && strings.HasSuffix(fmt.Sprint(m["action"]), "_disconnected")
	})
	return authzResult{raw: raw, m: m}
}

func runDDP(t *testing.T, url string, sub bool, name string, params []any) authzResult {
	t.Helper()
	w := dialWS(t, url)
	defer w.conn.Close()
	if i := strings.Index(url, "/sockjs/"); i >= 0 {
		w.sockjs = strings.Count(url[i:], "/") == 4 // /sockjs/:server/:session/websocket
	}
	w.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1"}})
	w.await(func(m map[string]any) bool { return m["msg"] == "connected" })
	if params == nil {
		params = []any{}
	}
	if sub {
		w.send(map[string]any{"msg": "sub", "id": "probe", "name": name, "params": params})
		raw, m := w.await(func(m map[string]any) bool {
			return m["id"] == "probe" && (m["msg"] == "nosub" || m["msg"] == "ready") || m["msg"] == "ready"
		})
		return authzResult{raw: raw, m: m}
	}
	w.send(map[string]any{"msg": "method", "id": "probe", "method": name, "params": params})
	raw, m := w.await(func(m map[string]any) bool { return m["msg"] == "result" && m["id"] == "probe" })
	return authzResult{raw: raw, m: m}
}

func (f *authzFixture) run(t *testing.T, c authzClient, r authzRow) authzResult {
	t.Helper()
	base := f.base
	if r.expiredGW {
		base = f.expiredBase
	}
	ws := "ws" + strings.TrimPrefix(base, "http")
	switch r.kind {
	case viaAgentRTM:
		return runRTM(t, ws+"/v3.5/agent/rtm/ws", r.login, r.action, r.payload)
	case viaCustomerRTM:
		p := r.path
		if p == "" {
			p = "/v3.5/customer/rtm/ws?organization_id=" + authzOrg
		}
		return runRTM(t, ws+p, r.login, r.action, r.payload)
	case viaDDPMethod, viaDDPSub:
		p := r.path
		if p == "" {
			p = "/websocket"
		}
		return runDDP(t, ws+p, r.kind == viaDDPSub, r.action, r.params)
	default:
		return c.do(r.method, base+r.path, r.hdr, r.body, r.ctype)
	}
}

// TestAuthorizationMatrix: every surface's refusals of another visitor's
// conversation, missing, wrong, revoked, expired and forged credentials,
// each in its protocol's own error shape; then every route has a row.
func TestAuthorizationMatrix(t *testing.T) {
	inv := &authzInventory{}
	// A relay connector (to a port nobody listens on) for department 1,
	// which the fixture does not use: it mounts the relay view.
	g := startAuthzGateway(t, authzConfig(t, "  customer:\n    allowed_origins: [\""+shopOrigin+"\"]\n    client_ids: [\"\", \"authz-client\"]\n"+"relay:\n  connectors:\n    - {name: rc, kind: rocketchat, url: \"http://127.0.0.1:9\"}\n  routes:\n    - {department: \"1\", upstream: rc}\n"), inv)
	short := startAuthzGateway(t, authzConfig(t, "  customer:\n    token_ttl: 1s\n"), nil)
	c := authzClient{t: t, http: &http.Client{Timeout: 15 * time.Second}}
	f := newAuthzFixture(t, c, "http://"+g.addr, "http://"+short.addr)

	rows := f.rows()
	covered := map[string]int{}
	for i, r := range rows {
		for _, k := range r.covers {
			covered[k]++
		}
		name := fmt.Sprintf("%03d %s %s", i, strings.Join(r.covers[len(r.covers)-1:], ""), r.probe)
		t.Run(name, func(t *testing.T) {
			c := authzClient{t: t, http: c.http}
			res := f.run(t, c, r)
			if err := r.want(res); err != nil {
				t.Error(err)
			}
			if !r.reveals && bytes.Contains(res.raw, []byte(authzSecret)) {
				t.Errorf("answer reveals visitor B's data: %.400s", res.raw)
			}
		})
	}

	// B's data is untouched by all of the above.
	q := url.Values{"licence_id": {testLicence}, "secured_session_id": {f.sidB}}
	pending := c.must("GET", f.base+"/visitors/"+f.v2B+"/chat/get_pending_messages?"+q.Encode(), map[string]string{"X-API-Version": "2"}, "", "")
	for _, e := range pending["events"].([]any) {
		if ev := e.(map[string]any); ev["type"] == "chat_closed" || ev["text"] == "intrude" {
			t.Errorf("B's v2 chat changed: %v", ev)
		}
	}
	hist := c.must("GET", f.base+"/api/v1/livechat/messages.history/"+f.ridB+"?token="+f.tokB, nil, "", "")
	msgs, _ := hist["messages"].([]any)
	var texts []string
	for _, m := range msgs {
		if mm, _ := m.(map[string]any); mm["t"] == nil {
			texts = append(texts, fmt.Sprint(mm["msg"]))
		}
	}
	if strings.Join(texts, "|") != authzSecret+" rc" {
		t.Errorf("B's Rocket.Chat room changed: %q", texts)
	}
	room := c.must("GET", f.base+"/api/v1/livechat/room?token="+f.tokB, nil, "", "")["room"].(map[string]any)
	if room["_id"] != f.ridB || room["open"] != true {
		t.Errorf("B's Rocket.Chat room: %v", room)
	}
	chat := c.must("POST", f.base+"/v3.5/customer/action/get_chat?organization_id="+authzOrg, map[string]string{"Authorization": "Bearer " + f.ctB},
		jsonBody(map[string]any{"chat_id": f.chatB, "thread_id": f.threadB}), "")
	if th, _ := chat["thread"].(map[string]any); th["active"] != true || len(th["events"].([]any)) == 0 {
		t.Errorf("B's customer chat: %v", chat)
	}

	// Every route and every dispatched entry has a row.
	keys := inv.keys()
	if len(keys) < 100 {
		t.Fatalf("inventory has %d keys: Routes hook not called?", len(keys))
	}
	var missing []string
	for _, k := range keys {
		if covered[k] == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("routes without an authorization matrix row (add rows to authz_test.go):\n  %s", strings.Join(missing, "\n  "))
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k] = true
	}
	for k := range covered {
		if !known[k] {
			t.Errorf("matrix row covers %q, which the gateway does not serve", k)
		}
	}
	t.Logf("%d rows over %d routes and dispatched entries", len(rows), len(keys))
}
