package rocketchat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
	"chatgate/store/files"
)

// Agents of the REST tests: ann serves support and sales, bob sales, cid
// every department (no departments). Only agents a test connects are
// online.
var restAgents = []model.Agent{
	{ID: "ann@x", Username: "ann", Name: "Ann", Departments: []model.DeptID{"sup", "sales"}},
	{ID: "bob@x", Username: "bob", Name: "Bob", Departments: []model.DeptID{"sales"}},
	{ID: "cid@x", Username: "cid", Name: "Cid"},
}

var restPasswords = map[string]string{"ann": "ann-secret", "bob": "bob-secret", "cid": "cid-secret"}

const restMaxText = 200

type rh struct {
	t   testing.TB
	srv *httptest.Server
	d   *desk.Desk
	s   *Surface
	st  store.Store
	cfg Config
}

func restLoginFunc(user, pass string) (model.AgentID, bool) {
	for _, a := range restAgents {
		if (a.Username == user || string(a.ID) == user) && restPasswords[a.Username] == pass {
			return a.ID, true
		}
	}
	return "", false
}

func newRH(t testing.TB) *rh {
	t.Helper()
	tmp := t.TempDir()
	st, err := bolt.Open(filepath.Join(tmp, "rc.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.Open(filepath.Join(tmp, "files"), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	d := desk.New(desk.Options{Store: st, Router: routing.New(restAgents, true), Bus: hub.NewBus(),
		Actors: hub.NewActors(16), Limits: desk.Limits{MaxText: restMaxText}, Logger: zerolog.Nop(),
		Departs: []model.Department{{ID: "sup", Name: "Support"}, {ID: "sales", Name: "Sales"}}, Properties: testProperties(t, st)})
	cfg := Config{Files: fs, Login: restLoginFunc, MaxBody: 8 << 10, WidgetDir: filepath.Join(tmp, "widget"),
		CustomFields: testCustomFields, RoomFieldNamespace: testFieldNS}
	s := New(d, cfg, zerolog.Nop())
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	// As the gateway's engine (cmd/chatgate newEngine): its generic 404/405
	// must not answer under /api/v1.
	e.HandleMethodNotAllowed = true
	e.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "not found"}) })
	e.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method not allowed"}) })
	s.Mount(e)
	srv := httptest.NewServer(e)
	ctx, cancel := context.WithCancel(context.Background())
	done, sdone := make(chan struct{}), make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	go func() { _ = s.Run(ctx); close(sdone) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-sdone
		st.Close()
	})
	return &rh{t: t, srv: srv, d: d, s: s, st: st, cfg: cfg}
}

// do sends a request; body is a string (sent as is) or a value (JSON).
func (h *rh) do(method, path string, body any, hdr map[string]string) (int, map[string]any, http.Header) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		h.t.Fatalf("%s %s: %d body %q is not a JSON object: %v", method, path, resp.StatusCode, raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	return resp.StatusCode, m, resp.Header
}

// ok requires a 200 success answer.
func (h *rh) ok(method, path string, body any, hdr map[string]string) map[string]any {
	h.t.Helper()
	code, m, _ := h.do(method, path, body, hdr)
	if code != 200 || m["success"] != true {
		h.t.Fatalf("%s %s: %d %v", method, path, code, m)
	}
	return m
}

// visitor registers a visitor and returns its token.
func (h *rh) visitor(token, name string) map[string]any {
	h.t.Helper()
	m := h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": token, "name": name}}, nil)
	return m["visitor"].(map[string]any)
}

// room opens (or returns) the token's room; agent ann must be online.
func (h *rh) room(token string) string {
	h.t.Helper()
	m := h.ok("GET", "/api/v1/livechat/room?token="+token, nil, nil)
	return m["room"].(map[string]any)["_id"].(string)
}

func (h *rh) send(token, rid, msg string) map[string]any {
	h.t.Helper()
	m := h.ok("POST", "/api/v1/livechat/message", map[string]any{"token": token, "rid": rid, "msg": msg}, nil)
	return m["message"].(map[string]any)
}

func (h *rh) history(token, rid string) []map[string]any {
	h.t.Helper()
	m := h.ok("GET", "/api/v1/livechat/messages.history/"+rid+"?token="+token, nil, nil)
	var out []map[string]any
	for _, x := range m["messages"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func (h *rh) online(id model.AgentID) { h.d.AgentConnected(id, true) }

// login returns agent headers.
func (h *rh) login(user, pass string) map[string]string {
	h.t.Helper()
	code, m, _ := h.do("POST", "/api/v1/login", map[string]any{"user": user, "password": pass}, nil)
	if code != 200 || m["status"] != "success" {
		h.t.Fatalf("login %s: %d %v", user, code, m)
	}
	data := m["data"].(map[string]any)
	return map[string]string{"X-User-Id": data["userId"].(string), "X-Auth-Token": data["authToken"].(string)}
}

// wantErr checks a status and a subset of the body.
func wantErr(t *testing.T, what string, code int, m map[string]any, wantCode int, want map[string]any) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: status %d, want %d (%v)", what, code, wantCode, m)
		return
	}
	for k, v := range want {
		if !equalJSON(m[k], v) {
			t.Errorf("%s: %s = %#v, want %#v (body %v)", what, k, m[k], v, m)
		}
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// Error bodies of spec §3.3.
func errA(code string) map[string]any {
	return map[string]any{"success": false, "error": "[" + code + "]", "errorType": code}
}

func errB(code string) map[string]any {
	return map[string]any{"success": false, "isClientSafe": true, "error": code, "message": "[" + code + "]", "errorType": "Meteor.Error"}
}

var unauth401 = map[string]any{"status": "error", "message": "You must be logged in to do this."}

// --- config ----------------------------------------------------------------------------

func TestConfig(t *testing.T) {
	h := newRH(t)
	m := h.ok("GET", "/api/v1/livechat/config?", nil, nil)
	cfg := m["config"].(map[string]any)
	for _, k := range []string{"settings", "theme", "messages", "survey", "triggers", "departments", "resources"} {
		if cfg[k] == nil {
			t.Errorf("config.%s missing", k)
		}
	}
	if cfg["enabled"] != true || cfg["online"] != false {
		t.Errorf("enabled/online with no agent connected: %v %v", cfg["enabled"], cfg["online"])
	}
	for _, k := range []string{"guest", "room", "agent"} {
		if _, ok := cfg[k]; ok {
			t.Errorf("config.%s present without token", k)
		}
	}
	depts := cfg["departments"].([]any)
	// Every configured department, ordered by id.
	if len(depts) != 2 || depts[0].(map[string]any)["_id"] != "sales" || depts[1].(map[string]any)["name"] != "Support" {
		t.Errorf("departments %v", depts)
	}
	set := cfg["settings"].(map[string]any)
	if set["fileUpload"] != true || set["limitTextLength"] != float64(restMaxText) || set["showConnecting"] != false {
		t.Errorf("settings %v", set)
	}
	if snd := cfg["resources"].(map[string]any)["sound"]; snd != h.srv.URL+"/sounds/chime.mp3" {
		t.Errorf("sound %v", snd)
	}

	h.online("bob@x")
	cfg = h.ok("GET", "/api/v1/livechat/config?token=unknown", nil, nil)["config"].(map[string]any)
	if cfg["online"] != true || cfg["guest"] != nil {
		t.Errorf("online %v guest %v", cfg["online"], cfg["guest"])
	}
	cfg = h.ok("GET", "/api/v1/livechat/config?department=sup", nil, nil)["config"].(map[string]any)
	if cfg["online"] != false {
		t.Errorf("support has no online agent, online = %v", cfg["online"])
	}

	h.visitor("tok-a", "Alice")
	rid := h.room("tok-a")
	cfg = h.ok("GET", "/api/v1/livechat/config?token=tok-a", nil, nil)["config"].(map[string]any)
	guest := cfg["guest"].(map[string]any)
	room := cfg["room"].(map[string]any)
	agent := cfg["agent"].(map[string]any)
	if guest["token"] != "tok-a" || guest["name"] != "Alice" || guest["username"] != "guest-1" {
		t.Errorf("guest %v", guest)
	}
	if room["_id"] != rid || room["open"] != true || room["servedBy"].(map[string]any)["username"] != "bob" {
		t.Errorf("room %v", room)
	}
	if agent["_id"] != "bob@x" || agent["username"] != "bob" || agent["name"] != "Bob" || agent["status"] != "online" {
		t.Errorf("agent %v", agent)
	}
	// Dates are ISO strings.
	if ts, _ := room["servedBy"].(map[string]any)["ts"].(string); !isISO(ts) {
		t.Errorf("servedBy.ts %q is not an ISO date", ts)
	}

	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-a"}, nil)
	cfg = h.ok("GET", "/api/v1/livechat/config?token=tok-a", nil, nil)["config"].(map[string]any)
	if cfg["room"] != nil || cfg["agent"] != nil || cfg["guest"] == nil {
		t.Errorf("after close: room %v agent %v guest %v", cfg["room"], cfg["agent"], cfg["guest"])
	}
}

func isISO(s string) bool {
	return len(s) == len("2006-01-02T15:04:05.000Z") && strings.HasSuffix(s, "Z") && s[10] == 'T'
}

// --- visitors ------------------------------------------------------------------------

func TestVisitorRegister(t *testing.T) {
	h := newRH(t)
	v := h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{
		"token": "tok-1", "name": "Jane", "email": " Jane@Example.com ", "department": "Sales", "phone": "+15551234",
		"customFields": []any{map[string]any{"key": "customerId", "value": "A-1", "overwrite": true}},
	}}, nil)["visitor"].(map[string]any)
	want := map[string]any{"token": "tok-1", "name": "Jane", "username": "guest-1", "status": "online",
		"visitorEmails": []any{map[string]any{"address": "jane@example.com"}}, "department": "sales",
		"phone": []any{map[string]any{"phoneNumber": "+15551234"}}, "livechatData": map[string]any{"customerId": "A-1"}}
	for k, w := range want {
		if !equalJSON(v[k], w) {
			t.Errorf("visitor.%s = %v, want %v", k, v[k], w)
		}
	}
	for _, k := range []string{"ts", "_updatedAt"} {
		if s, _ := v[k].(string); !isISO(s) {
			t.Errorf("visitor.%s = %v", k, v[k])
		}
	}
	id := v["_id"]
	// Update: same visitor, same username; overwrite:false keeps a value.
	v2 := h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{
		"token": "tok-1", "name": "Jane D",
		"customFields": []any{map[string]any{"key": "customerId", "value": "B-2", "overwrite": false}},
	}}, nil)["visitor"].(map[string]any)
	if v2["_id"] != id || v2["username"] != "guest-1" || v2["name"] != "Jane D" ||
		v2["livechatData"].(map[string]any)["customerId"] != "A-1" {
		t.Errorf("updated visitor %v", v2)
	}
	// A second visitor gets the next number; a chosen username is kept.
	if u := h.visitor("tok-2", "")["username"]; u != "guest-2" {
		t.Errorf("second visitor username %v", u)
	}
	v3 := h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-3", "username": "jdoe"}}, nil)
	if u := v3["visitor"].(map[string]any)["username"]; u != "jdoe" {
		t.Errorf("chosen username %v", u)
	}
	// The username survives a restart (a new surface on the same store).
	s2 := New(h.d, h.cfg, zerolog.Nop())
	vis, err := s2.visitorByToken(context.Background(), "tok-1")
	if err != nil {
		t.Fatal(err)
	}
	if u := s2.renderVisitor(&vis, "tok-1")["username"]; u != "guest-1" {
		t.Errorf("username after restart %v", u)
	}

	got := h.ok("GET", "/api/v1/livechat/visitor/tok-1", nil, nil)["visitor"].(map[string]any)
	if got["_id"] != id || got["token"] != "tok-1" {
		t.Errorf("GET visitor %v", got)
	}

	cases := []struct {
		name string
		body any
		want map[string]any
	}{
		{"no visitor", map[string]any{}, map[string]any{"success": false, "error": "Match error: Missing key 'visitor'"}},
		{"no token", map[string]any{"visitor": map[string]any{"name": "x"}},
			map[string]any{"success": false, "error": "Match error: Missing key 'token' in field visitor"}},
		{"token not a string", map[string]any{"visitor": map[string]any{"token": 5}},
			map[string]any{"success": false, "error": "Match error: Expected string, got number in field token"}},
		{"blank token", map[string]any{"visitor": map[string]any{"token": " "}},
			map[string]any{"success": false, "error": "Token cannot be empty [error-invalid-token]", "errorType": "error-invalid-token"}},
		{"bad email", map[string]any{"visitor": map[string]any{"token": "t9", "email": "jane@"}},
			map[string]any{"success": false, "error": "Invalid email jane@ [error-invalid-email]", "errorType": "error-invalid-email",
				"details": map[string]any{"function": "Livechat.validateEmail", "email": "jane@"}}},
		{"bad department", map[string]any{"visitor": map[string]any{"token": "t9", "department": "nope"}},
			map[string]any{"success": false, "error": "The provided department is invalid [error-invalid-department]",
				"errorType": "error-invalid-department", "details": map[string]any{"method": "registerGuest"}}},
		{"custom field against its regexp", map[string]any{"visitor": map[string]any{"token": "t9",
			"customFields": []any{map[string]any{"key": "customerId", "value": "nope"}}}}, errA("Invalid value for customerId field")},
	}
	for _, tc := range cases {
		code, m, _ := h.do("POST", "/api/v1/livechat/visitor", tc.body, nil)
		wantErr(t, tc.name, code, m, 400, tc.want)
	}
	code, m, _ := h.do("GET", "/api/v1/livechat/visitor/nobody", nil, nil)
	wantErr(t, "GET unknown visitor", code, m, 400, errA("invalid-token"))
	code, m, _ = h.do("POST", "/api/v1/livechat/visitor", `{"visitor":`, nil)
	wantErr(t, "broken JSON", code, m, 400, map[string]any{"success": false})
}

func TestVisitorDelete(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-d", "name": "Dee",
		"email": "dee@example.com", "customFields": []any{map[string]any{"key": "k", "value": "v", "overwrite": true}}}}, nil)
	rid := h.room("tok-d")
	code, m, _ := h.do("DELETE", "/api/v1/livechat/visitor/tok-d", "{}", nil)
	wantErr(t, "open room", code, m, 400, map[string]any{"success": false,
		"error": "Cannot remove visitors with opened rooms [visitor-has-open-rooms]", "errorType": "visitor-has-open-rooms"})
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-d"}, nil)
	m = h.ok("DELETE", "/api/v1/livechat/visitor/tok-d", "{}", nil)
	dv := m["visitor"].(map[string]any)
	if dv["_id"] == "" || !isISO(dv["ts"].(string)) || len(dv) != 2 {
		t.Errorf("deleted visitor %v", dv)
	}
	// As on Rocket.Chat (removeGuest deletes the visitor document): the
	// token stops working on every route; the messages are kept (an agent
	// still reads them) with an erased profile.
	code, m, _ = h.do("GET", "/api/v1/livechat/visitor/tok-d", nil, nil)
	wantErr(t, "visitor after delete", code, m, 400, errA("invalid-token"))
	code, m, _ = h.do("GET", "/api/v1/livechat/messages.history/"+rid+"?token=tok-d", nil, nil)
	wantErr(t, "history after delete", code, m, 400, map[string]any{"success": false})
	conv, err := h.s.conversation(context.Background(), rid)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := h.st.Events(context.Background(), conv.ID, 1, 0)
	if err != nil || len(evs) == 0 {
		t.Errorf("messages after delete: %d, %v", len(evs), err)
	}
	old, err := h.st.Visitor(context.Background(), conv.Visitor)
	if err != nil || old.Name != "" || old.Email != "" || old.Fields["k"] != "" {
		t.Errorf("erased visitor %+v %v", old, err)
	}
	// The token registered again is a new visitor, without the old rooms.
	nv := h.visitor("tok-d", "Dee again")
	if nv["_id"] == string(conv.Visitor) || nv["token"] != "tok-d" {
		t.Errorf("re-registered visitor %v", nv)
	}
	code, m, _ = h.do("GET", "/api/v1/livechat/messages.history/"+rid+"?token=tok-d", nil, nil)
	wantErr(t, "old room for the new visitor", code, m, 400, map[string]any{"success": false})
	if got := h.ok("GET", "/api/v1/livechat/visitor/tok-d", nil, nil)["visitor"].(map[string]any); got["name"] != "Dee again" || got["token"] != "tok-d" {
		t.Errorf("new visitor by token %v", got)
	}
	code, m, _ = h.do("DELETE", "/api/v1/livechat/visitor/nobody", "{}", nil)
	wantErr(t, "unknown token", code, m, 400, errA("invalid-token"))
}

func TestVisitorStatusAndFields(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.visitor("tok-s", "Sam")
	rid := h.room("tok-s")
	m := h.ok("POST", "/api/v1/livechat/visitor.status", map[string]any{"token": "tok-s", "status": "away"}, nil)
	if m["token"] != "tok-s" || m["status"] != "away" {
		t.Errorf("visitor.status %v", m)
	}
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-s", nil, nil)["room"].(map[string]any)
	if room["v"].(map[string]any)["status"] != "away" {
		t.Errorf("room.v %v", room["v"])
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/visitor.status", map[string]any{"token": "nobody", "status": "away"}, nil)
	wantErr(t, "status unknown token", code, m, 400, errA("invalid-token"))
	code, m, _ = h.do("POST", "/api/v1/livechat/visitor.status", map[string]any{"token": "tok-s"}, nil)
	wantErr(t, "status missing", code, m, 400, map[string]any{"success": false, "error": "Match error: Missing key 'status'"})

	m = h.ok("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-s", "key": "plan", "value": "gold", "overwrite": true}, nil)
	if !equalJSON(m["field"], map[string]any{"key": "plan", "value": "gold", "overwrite": true}) {
		t.Errorf("custom.field %v", m)
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "nobody", "key": "plan", "value": "x", "overwrite": true}, nil)
	wantErr(t, "custom.field unknown token", code, m, 400, errB("invalid-token"))
	code, m, _ = h.do("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-s", "key": "_rc.x", "value": "x", "overwrite": true}, nil)
	wantErr(t, "custom.field reserved", code, m, 400, errB("invalid-custom-field"))
	code, m, _ = h.do("POST", "/api/v1/livechat/custom.field", map[string]any{"token": "tok-s", "value": "x", "overwrite": true}, nil)
	wantErr(t, "custom.field match", code, m, 400, map[string]any{"success": false, "errorType": "Match.Error",
		"message": "Match error: Missing key 'key'", "path": "key"})

	m = h.ok("POST", "/api/v1/livechat/custom.fields", map[string]any{"token": "tok-s", "customFields": []any{
		map[string]any{"key": "plan", "value": "silver", "overwrite": false}, map[string]any{"key": "size", "value": "L", "overwrite": true}}}, nil)
	if !equalJSON(m["fields"], []any{map[string]any{"Key": "plan", "value": "silver", "overwrite": false},
		map[string]any{"Key": "size", "value": "L", "overwrite": true}}) {
		t.Errorf("custom.fields %v", m)
	}
	v := h.ok("GET", "/api/v1/livechat/visitor/tok-s", nil, nil)["visitor"].(map[string]any)
	if !equalJSON(v["livechatData"], map[string]any{"plan": "gold", "size": "L"}) {
		t.Errorf("livechatData %v", v["livechatData"])
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/custom.fields", map[string]any{"token": "nobody", "customFields": []any{}}, nil)
	wantErr(t, "custom.fields unknown token", code, m, 400, errA("invalid-token"))

	m = h.ok("POST", "/api/v1/livechat/visitor.callStatus", map[string]any{"token": "tok-s", "callStatus": "ended", "rid": rid, "callId": "c1"}, nil)
	if m["token"] != "tok-s" || m["callStatus"] != "ended" {
		t.Errorf("callStatus %v", m)
	}
}

// --- rooms and messages --------------------------------------------------------------------

func TestRoomLifecycle(t *testing.T) {
	h := newRH(t)
	h.visitor("tok-r", "Rita")
	code, m, _ := h.do("GET", "/api/v1/livechat/room?token=tok-r", nil, nil)
	wantErr(t, "no agent online", code, m, 400, map[string]any{"success": false,
		"error": "Sorry, no online agents [no-agent-online]", "errorType": "no-agent-online"})
	code, m, _ = h.do("GET", "/api/v1/livechat/room", nil, nil)
	wantErr(t, "no token", code, m, 400, map[string]any{"success": false, "error": "Match error: Missing key 'token'"})
	code, m, _ = h.do("GET", "/api/v1/livechat/room?token=nobody", nil, nil)
	wantErr(t, "unknown token", code, m, 400, errA("invalid-token"))

	h.online("ann@x")
	// The widget's cookie makes the room's source "widget" (Rocket.Chat's
	// isWidget(), room.js, checked); without it the source is "api".
	m = h.ok("GET", "/api/v1/livechat/room?token=tok-r", nil, map[string]string{"Cookie": "rc_is_widget=t; other=1"})
	room := m["room"].(map[string]any)
	if m["newRoom"] != true || room["t"] != "l" || room["open"] != true || room["fname"] != "Rita" ||
		room["v"].(map[string]any)["token"] != "tok-r" || room["servedBy"].(map[string]any)["_id"] != "ann@x" ||
		!equalJSON(room["source"], map[string]any{"type": "widget"}) {
		t.Errorf("new room %v", m)
	}
	rid := room["_id"].(string)
	m = h.ok("GET", "/api/v1/livechat/room?token=tok-r", nil, nil)
	if m["newRoom"] != false || m["room"].(map[string]any)["_id"] != rid {
		t.Errorf("second GET room %v", m)
	}
	m = h.ok("GET", "/api/v1/livechat/room?token=tok-r&rid="+rid, nil, nil)
	if m["room"].(map[string]any)["_id"] != rid {
		t.Errorf("GET room by rid %v", m)
	}
	code, m, _ = h.do("GET", "/api/v1/livechat/room?token=tok-r&rid=nope", nil, nil)
	wantErr(t, "unknown rid", code, m, 400, errA("invalid-room"))

	msg := h.send("tok-r", rid, "Hello")
	if msg["rid"] != rid || msg["msg"] != "Hello" || msg["token"] != "tok-r" || msg["alias"] != "Rita" ||
		len(msg["_id"].(string)) != 17 || !isISO(msg["ts"].(string)) {
		t.Errorf("message %v", msg)
	}
	if u := msg["u"].(map[string]any); u["username"] != "guest-1" || u["name"] != "Rita" {
		t.Errorf("message.u %v", u)
	}
	hist := h.history("tok-r", rid)
	var types []string
	for _, e := range hist {
		types = append(types, strOf(e["t"])+":"+strOf(e["msg"]))
	}
	if strings.Join(types, ",") != ":Hello,command:connected,livechat-started:" {
		t.Errorf("history (newest first) %v", types)
	}
	if u := hist[1]["u"].(map[string]any); u["username"] != "ann" {
		t.Errorf("command connected u %v", u)
	}

	// Too long, then closing.
	code, m, _ = h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-r", "rid": rid, "msg": strings.Repeat("x", restMaxText+1)}, nil)
	wantErr(t, "too long", code, m, 400, errB("message-length-exceeds-character-limit"))
	code, m, _ = h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-r", "rid": rid}, nil)
	wantErr(t, "no msg", code, m, 400, map[string]any{"success": false, "errorType": "Match.Error", "path": "msg"})
	m = h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-r"}, nil)
	if m["rid"] != rid || m["comment"] != "Closed by visitor" {
		t.Errorf("room.close %v", m)
	}
	hist = h.history("tok-r", rid)
	if hist[0]["t"] != "livechat-close" || hist[0]["msg"] != "Closed by visitor" || hist[0]["u"].(map[string]any)["_id"] == "" {
		t.Errorf("close message %v", hist[0])
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-r"}, nil)
	wantErr(t, "close twice", code, m, 400, errB("room-closed"))
	code, m, _ = h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-r", "rid": rid, "msg": "late"}, nil)
	wantErr(t, "message after close", code, m, 400, errB("room-closed"))
	code, m, _ = h.do("GET", "/api/v1/livechat/room?token=tok-r&rid="+rid, nil, nil)
	wantErr(t, "closed rid", code, m, 400, errA("invalid-room"))
	// A new room after close.
	m = h.ok("GET", "/api/v1/livechat/room?token=tok-r", nil, nil)
	if m["newRoom"] != true || m["room"].(map[string]any)["_id"] == rid {
		t.Errorf("room after close %v", m)
	}
}

func strOf(v any) string { s, _ := v.(string); return s }

func TestMessageIDs(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.visitor("tok-m", "Mia")
	rid := h.room("tok-m")
	body := map[string]any{"token": "tok-m", "rid": rid, "msg": "hi", "_id": "clientChosenId01"}
	m1 := h.ok("POST", "/api/v1/livechat/message", body, nil)["message"].(map[string]any)
	m2 := h.ok("POST", "/api/v1/livechat/message", body, nil)["message"].(map[string]any)
	if m1["_id"] != "clientChosenId01" || m2["_id"] != "clientChosenId01" || m1["ts"] != m2["ts"] {
		t.Errorf("idempotent post: %v / %v", m1, m2)
	}
	n := 0
	for _, e := range h.history("tok-m", rid) {
		if e["msg"] == "hi" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d copies of an idempotent message", n)
	}
	// GET, PUT, DELETE by client id and by generated id.
	gen := h.send("tok-m", rid, "second")["_id"].(string)
	for _, id := range []string{"clientChosenId01", gen} {
		m := h.ok("GET", "/api/v1/livechat/message/"+id+"?token=tok-m&rid="+rid, nil, nil)["message"].(map[string]any)
		if m["_id"] != id {
			t.Errorf("GET message %s: %v", id, m)
		}
	}
	m := h.ok("PUT", "/api/v1/livechat/message/"+gen, map[string]any{"token": "tok-m", "rid": rid, "msg": "edited"}, nil)["message"].(map[string]any)
	if m["msg"] != "edited" || m["editedAt"] == nil || m["editedBy"].(map[string]any)["username"] != "guest-1" {
		t.Errorf("PUT message %v", m)
	}
	m = h.ok("DELETE", "/api/v1/livechat/message/"+gen, map[string]any{"token": "tok-m", "rid": rid}, nil)["message"].(map[string]any)
	if m["_id"] != gen || !isISO(strOf(m["ts"])) || len(m) != 2 {
		t.Errorf("DELETE message %v", m)
	}
	for _, e := range h.history("tok-m", rid) {
		if e["_id"] == gen {
			t.Errorf("deleted message in history: %v", e)
		}
	}
	code, b, _ := h.do("GET", "/api/v1/livechat/message/"+gen+"?token=tok-m&rid="+rid, nil, nil)
	wantErr(t, "GET deleted", code, b, 400, errB("invalid-message"))
	code, b, _ = h.do("GET", "/api/v1/livechat/message/nope?token=tok-m&rid="+rid, nil, nil)
	wantErr(t, "GET unknown", code, b, 400, errB("invalid-message"))
	code, b, _ = h.do("GET", "/api/v1/livechat/message/nope?token=tok-m", nil, nil)
	wantErr(t, "GET without rid", code, b, 400, map[string]any{"success": false, "errorType": "Match.Error", "path": "rid"})

	// The agent's message cannot be edited or deleted by the visitor.
	ev, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: model.ConvID(rid),
		Author: model.Author{Kind: model.AuthorAgent, ID: "ann@x", Name: "Ann"}, Draft: desk.Draft{Text: "agent says"}})
	if err != nil {
		t.Fatal(err)
	}
	code, b, _ = h.do("PUT", "/api/v1/livechat/message/"+ev.ID, map[string]any{"token": "tok-m", "rid": rid, "msg": "x"}, nil)
	wantErr(t, "edit agent message", code, b, 400, map[string]any{"success": false, "error": "error-action-not-allowed",
		"reason": "Message editing not allowed", "message": "Message editing not allowed [error-action-not-allowed]"})
	code, b, _ = h.do("DELETE", "/api/v1/livechat/message/"+ev.ID, map[string]any{"token": "tok-m", "rid": rid}, nil)
	wantErr(t, "delete agent message", code, b, 400, map[string]any{"success": false, "error": "error-action-not-allowed",
		"reason": "Message deleting not allowed"})
	m = h.ok("GET", "/api/v1/livechat/message/"+ev.ID+"?token=tok-m&rid="+rid, nil, nil)["message"].(map[string]any)
	if m["u"].(map[string]any)["username"] != "ann" || m["token"] != nil {
		t.Errorf("agent message %v", m)
	}
	// History paging: limit and end.
	hist := h.history("tok-m", rid)
	m = h.ok("GET", "/api/v1/livechat/messages.history/"+rid+"?token=tok-m&limit=2", nil, nil)
	if got := m["messages"].([]any); len(got) != 2 || got[0].(map[string]any)["_id"] != hist[0]["_id"] {
		t.Errorf("limit=2: %v", got)
	}
	m = h.ok("GET", "/api/v1/livechat/messages.history/"+rid+"?token=tok-m&end="+url.QueryEscape(strOf(hist[0]["ts"])), nil, nil)
	for _, x := range m["messages"].([]any) {
		if x.(map[string]any)["_id"] == hist[0]["_id"] {
			t.Errorf("end excludes the message at end")
		}
	}
	code, b, _ = h.do("GET", "/api/v1/livechat/messages.history/"+rid, nil, nil)
	wantErr(t, "history without token", code, b, 400, map[string]any{"success": false, "error": "error-token-param-not-provided",
		"reason": `The required "token" query param is missing.`})
}

func TestRoomTransferSurveyPage(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.online("bob@x")
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-t", "name": "Tom", "department": "sup"}}, nil)
	rid := h.room("tok-t")
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-t", nil, nil)["room"].(map[string]any)
	if room["departmentId"] != "sup" || room["servedBy"].(map[string]any)["_id"] != "ann@x" {
		t.Fatalf("room %v", room)
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/room.transfer", map[string]any{"rid": rid, "token": "tok-t", "department": "sup"}, nil)
	wantErr(t, "same department", code, m, 400, map[string]any{"success": false, "error": "error-forwarding-chat-same-department"})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.transfer", map[string]any{"rid": rid, "token": "tok-t", "department": "nope"}, nil)
	wantErr(t, "unknown department", code, m, 400, map[string]any{"success": false, "error": "error-invalid-department"})
	m = h.ok("POST", "/api/v1/livechat/room.transfer", map[string]any{"rid": rid, "token": "tok-t", "department": "sales"}, nil)
	room = m["room"].(map[string]any)
	if room["departmentId"] != "sales" || room["_id"] != rid || room["t"] != "l" {
		t.Errorf("transferred room %v", room)
	}
	if v := h.ok("GET", "/api/v1/livechat/visitor/tok-t", nil, nil)["visitor"].(map[string]any); v["department"] != "sales" {
		t.Errorf("visitor department after transfer %v", v["department"])
	}
	var th map[string]any
	for _, e := range h.history("tok-t", rid) {
		if e["t"] == "livechat_transfer_history" {
			th = e
			break
		}
	}
	if th == nil {
		t.Fatal("no livechat_transfer_history in history")
	}
	td := th["transferData"].(map[string]any)
	if td["scope"] != "department" || td["previousDepartment"] != "sup" ||
		!equalJSON(td["nextDepartment"], map[string]any{"_id": "sales", "name": "Sales"}) ||
		td["transferredBy"].(map[string]any)["type"] != "visitor" {
		t.Errorf("transferData %v", td)
	}

	m = h.ok("POST", "/api/v1/livechat/page.visited", map[string]any{"token": "tok-t", "rid": rid,
		"pageInfo": map[string]any{"change": "url", "title": "Pricing", "location": map[string]any{"href": "https://shop/p"}}}, nil)
	if !equalJSON(m["page"], map[string]any{"msg": "Pricing - https://shop/p", "navigation": map[string]any{
		"page": map[string]any{"change": "url", "title": "Pricing", "location": map[string]any{"href": "https://shop/p"}}, "token": "tok-t"}}) {
		t.Errorf("page.visited %v", m)
	}
	for _, e := range h.history("tok-t", rid) {
		if strings.Contains(strOf(e["msg"]), "Pricing") {
			t.Errorf("navigation history shown to the visitor: %v", e)
		}
	}
	m = h.ok("POST", "/api/v1/livechat/page.visited", map[string]any{"token": "tok-t",
		"pageInfo": map[string]any{"change": "title", "title": "x"}}, nil)
	if len(m) != 1 {
		t.Errorf("title change %v", m)
	}

	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-t"}, nil)
	m = h.ok("POST", "/api/v1/livechat/room.survey", map[string]any{"rid": rid, "token": "tok-t", "data": []any{
		map[string]any{"name": "satisfaction", "value": "5"}, map[string]any{"name": "additionalFeedback", "value": "great"}}}, nil)
	if m["rid"] != rid || !equalJSON(m["data"], map[string]any{"satisfaction": "5", "additionalFeedback": "great"}) {
		t.Errorf("survey %v", m)
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/room.survey", map[string]any{"rid": rid, "token": "tok-t", "data": []any{
		map[string]any{"name": "satisfaction", "value": "9"}}}, nil)
	wantErr(t, "bad survey", code, m, 400, errB("invalid-data"))
	code, m, _ = h.do("POST", "/api/v1/livechat/room.transfer", map[string]any{"rid": rid, "token": "tok-t", "department": "sup"}, nil)
	wantErr(t, "transfer closed", code, m, 400, errB("room-closed"))
	code, m, _ = h.do("POST", "/api/v1/livechat/transcript", map[string]any{"rid": rid, "token": "tok-t", "email": "t@example.com"}, nil)
	wantErr(t, "transcript", code, m, 400, map[string]any{"success": false, "message": "Error sending Omnichannel transcript"})
	code, m, _ = h.do("POST", "/api/v1/livechat/transcript", map[string]any{"rid": "nope", "token": "tok-t", "email": "t@example.com"}, nil)
	wantErr(t, "transcript bad room", code, m, 400, map[string]any{"success": false, "error": "error-invalid-room",
		"reason": "Invalid room", "message": "Invalid room [error-invalid-room]"})
}

func TestAgentInfoNext(t *testing.T) {
	h := newRH(t)
	code, m, _ := h.do("GET", "/api/v1/livechat/agent.next/anyone?department=", nil, nil)
	wantErr(t, "nobody online", code, m, 400, errB("agent-not-found"))
	h.online("bob@x")
	code, m, _ = h.do("GET", "/api/v1/livechat/agent.next/anyone?department=sup", nil, nil)
	wantErr(t, "nobody in support", code, m, 400, errB("agent-not-found"))
	m = h.ok("GET", "/api/v1/livechat/agent.next/anyone?department=Sales", nil, nil)
	if a := m["agent"].(map[string]any); a["_id"] != "bob@x" || a["username"] != "bob" || a["name"] != "Bob" {
		t.Errorf("agent.next %v", m)
	}
	h.visitor("tok-i", "Ida")
	rid := h.room("tok-i")
	m = h.ok("GET", "/api/v1/livechat/agent.next/tok-i", nil, nil)
	if len(m) != 1 {
		t.Errorf("agent.next with open room %v", m)
	}
	m = h.ok("GET", "/api/v1/livechat/agent.info/"+rid+"/tok-i?", nil, nil)
	if a := m["agent"].(map[string]any); a["_id"] != "bob@x" || a["status"] != "online" {
		t.Errorf("agent.info %v", m)
	}
	code, m, _ = h.do("GET", "/api/v1/livechat/agent.info/"+rid+"/nobody", nil, nil)
	wantErr(t, "agent.info unknown token", code, m, 400, errB("invalid-token"))
	code, m, _ = h.do("GET", "/api/v1/livechat/agent.info/nope/tok-i", nil, nil)
	wantErr(t, "agent.info unknown room", code, m, 400, errB("invalid-room"))

	// A queued room (bob at capacity? no: bob goes offline) has no agent.
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-i"}, nil)
	h.d.SetAccepting("bob@x", false)
	h.online("ann@x")
	h.d.SetAccepting("ann@x", true)
	h.visitor("tok-q", "Quinn")
	// Ann is online and accepting: the room gets her. Make a queued room by
	// starting one directly while nobody accepts.
	h.d.SetAccepting("ann@x", false)
	v, err := h.s.visitorByToken(context.Background(), "tok-q")
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := h.d.Start(context.Background(), desk.StartRequest{Visitor: v.ID, Origin: System})
	if err != nil {
		t.Fatal(err)
	}
	code, m, _ = h.do("GET", "/api/v1/livechat/agent.info/"+string(conv.ID)+"/tok-q", nil, nil)
	wantErr(t, "agent.info unassigned", code, m, 400, errB("invalid-agent"))
}

func TestOfflineMessage(t *testing.T) {
	h := newRH(t)
	m := h.ok("POST", "/api/v1/livechat/offline.message", map[string]any{"name": "Olga", "email": "olga@example.com",
		"message": "Call me", "department": "sales", "host": "http://x"}, nil)
	if m["message"] != "Livechat offline message sent" {
		t.Errorf("offline.message %v", m)
	}
	// Kept as a closed conversation of an "offline" visitor.
	id, err := h.st.Resolve(context.Background(), store.MapKey{System: System, Tenant: "default", Kind: kindOffline, Foreign: "olga@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	convs, _ := h.st.VisitorConversations(context.Background(), model.VisitorID(id))
	if len(convs) != 1 {
		t.Fatalf("offline conversations %v", convs)
	}
	c, _ := h.st.Conversation(context.Background(), convs[0])
	evs, _ := h.st.Events(context.Background(), c.ID, 1, 0)
	if c.State != model.StateClosed || c.Department != "sales" || len(evs) < 2 || evs[0].Form == nil || evs[1].Text != "Call me" {
		t.Errorf("offline conversation %+v %+v", c, evs)
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/offline.message", map[string]any{"name": "O", "email": "bad", "message": "x"}, nil)
	wantErr(t, "bad email", code, m, 400, map[string]any{"success": false, "isClientSafe": true, "error": "error-invalid-email-address",
		"reason": "Invalid email address", "details": map[string]any{"method": "livechat:sendOfflineMessage"}})
	code, m, _ = h.do("POST", "/api/v1/livechat/offline.message", map[string]any{"name": "O", "email": "o@example.com", "message": " "}, nil)
	wantErr(t, "empty message", code, m, 400, map[string]any{"success": false, "message": "Error sending Omnichannel offline message"})
	code, m, _ = h.do("POST", "/api/v1/livechat/offline.message", map[string]any{"email": "o@example.com", "message": "x"}, nil)
	wantErr(t, "no name", code, m, 400, map[string]any{"success": false, "errorType": "Match.Error", "path": "name"})
}

// --- uploads -------------------------------------------------------------------------------

func (h *rh) upload(rid, token, name, ctype string, content []byte, desc string) (int, map[string]any) {
	h.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if desc != "" {
		_ = mw.WriteField("description", desc)
	}
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	hdr.Set("Content-Type", ctype)
	w, _ := mw.CreatePart(hdr)
	_, _ = w.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", h.srv.URL+"/api/v1/livechat/upload/"+rid, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if token != "" {
		req.Header.Set("x-visitor-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, m
}

// A 1x1 PNG.
var tinyPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

func TestUpload(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.visitor("tok-u", "Uma")
	rid := h.room("tok-u")
	code, m := h.upload(rid, "tok-u", "pic one.png", "image/png", tinyPNG, "a picture")
	if code != 200 || m["success"] != true {
		t.Fatalf("upload: %d %v", code, m)
	}
	file := m["file"].(map[string]any)
	id := file["_id"].(string)
	path := "/file-upload/" + id + "/pic%20one.png"
	att := m["attachments"].([]any)[0].(map[string]any)
	if file["name"] != "pic one.png" || file["type"] != "image/png" || att["title_link"] != path || att["image_url"] != path ||
		att["description"] != "a picture" || !equalJSON(att["image_dimensions"], map[string]any{"width": 1, "height": 1}) ||
		m["rid"] != rid || m["token"] != "tok-u" {
		t.Errorf("upload message %v", m)
	}
	// The file is stored; the widget engineer's route serves it.
	if _, f, err := h.cfg.Files.Get(t.Context(), id); err != nil {
		t.Errorf("stored file: %v", err)
	} else {
		f.Close()
	}
	var fm map[string]any
	for _, e := range h.history("tok-u", rid) {
		if e["file"] != nil {
			fm = e
		}
	}
	if fm == nil || fm["fileUpload"].(map[string]any)["publicFilePath"] != h.srv.URL+path {
		t.Errorf("history file message %v", fm)
	}
	for _, tc := range []struct{ name, rid, token string }{
		{"no token", rid, ""}, {"unknown token", rid, "nobody"}, {"unknown room", "nope", "tok-u"},
	} {
		code, m := h.upload(tc.rid, tc.token, "a.txt", "text/plain", []byte("x"), "")
		wantErr(t, tc.name, code, m, 403, map[string]any{"success": false, "error": "unauthorized"})
	}
	code, m = h.upload(rid, "tok-u", "big.bin", "application/octet-stream", bytes.Repeat([]byte("x"), 65<<10), "")
	wantErr(t, "too big", code, m, 400, map[string]any{"success": false, "reason": "error-size-not-allowed", "sizeAllowed": "64 KB"})
	h.ok("POST", "/api/v1/livechat/room.close", map[string]any{"rid": rid, "token": "tok-u"}, nil)
	code, m = h.upload(rid, "tok-u", "a.txt", "text/plain", []byte("x"), "")
	wantErr(t, "closed room", code, m, 403, map[string]any{"success": false, "error": "unauthorized"})
}

// --- security: one visitor against another's room --------------------------------------

func TestVisitorIsolation(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.online("bob@x")
	h.visitor("tok-A", "Alice")
	h.visitor("tok-B", "Bob the visitor")
	ridA := h.room("tok-A")
	ridB := h.room("tok-B")
	msgB := h.send("tok-B", ridB, "B's secret")["_id"].(string)
	before := h.history("tok-B", ridB)

	type call struct {
		name, method, path string
		body               any
	}
	calls := []call{
		{"post message", "POST", "/api/v1/livechat/message", map[string]any{"token": "tok-A", "rid": ridB, "msg": "intrude"}},
		{"get message", "GET", "/api/v1/livechat/message/" + msgB + "?token=tok-A&rid=" + ridB, nil},
		{"get message via own room", "GET", "/api/v1/livechat/message/" + msgB + "?token=tok-A&rid=" + ridA, nil},
		{"edit message", "PUT", "/api/v1/livechat/message/" + msgB, map[string]any{"token": "tok-A", "rid": ridB, "msg": "x"}},
		{"edit via own room", "PUT", "/api/v1/livechat/message/" + msgB, map[string]any{"token": "tok-A", "rid": ridA, "msg": "x"}},
		{"delete message", "DELETE", "/api/v1/livechat/message/" + msgB, map[string]any{"token": "tok-A", "rid": ridB}},
		{"delete via own room", "DELETE", "/api/v1/livechat/message/" + msgB, map[string]any{"token": "tok-A", "rid": ridA}},
		{"history", "GET", "/api/v1/livechat/messages.history/" + ridB + "?token=tok-A", nil},
		{"agent.info", "GET", "/api/v1/livechat/agent.info/" + ridB + "/tok-A", nil},
		{"room by rid", "GET", "/api/v1/livechat/room?token=tok-A&rid=" + ridB, nil},
		{"close", "POST", "/api/v1/livechat/room.close", map[string]any{"rid": ridB, "token": "tok-A"}},
		{"transfer", "POST", "/api/v1/livechat/room.transfer", map[string]any{"rid": ridB, "token": "tok-A", "department": "sup"}},
		{"survey", "POST", "/api/v1/livechat/room.survey", map[string]any{"rid": ridB, "token": "tok-A", "data": []any{map[string]any{"name": "satisfaction", "value": "1"}}}},
		{"transcript", "POST", "/api/v1/livechat/transcript", map[string]any{"rid": ridB, "token": "tok-A", "email": "a@example.com"}},
		{"callStatus", "POST", "/api/v1/livechat/visitor.callStatus", map[string]any{"rid": ridB, "token": "tok-A", "callStatus": "x", "callId": "c"}},
	}
	for _, tc := range calls {
		code, m, _ := h.do(tc.method, tc.path, tc.body, nil)
		if code < 400 || m["success"] != false {
			t.Errorf("%s: visitor A reached B's room: %d %v", tc.name, code, m)
		}
		if b, _ := json.Marshal(m); strings.Contains(string(b), "secret") || strings.Contains(string(b), "Bob the visitor") {
			t.Errorf("%s: answer reveals B's data: %s", tc.name, b)
		}
	}
	// Re-using B's message id in A's own room does not replay B's message.
	code, m, _ := h.do("POST", "/api/v1/livechat/message", map[string]any{"token": "tok-A", "rid": ridA, "msg": "mine", "_id": msgB}, nil)
	if b, _ := json.Marshal(m); code == 200 || strings.Contains(string(b), "secret") {
		t.Errorf("reused id: %d %s", code, b)
	}
	code, m = h.upload(ridB, "tok-A", "x.txt", "text/plain", []byte("x"), "")
	wantErr(t, "upload to B's room", code, m, 403, map[string]any{"success": false, "error": "unauthorized"})

	// page.visited answers 200 for any token and room, as Rocket.Chat
	// does, the same for B's room as for no room, and stores nothing in
	// B's room.
	lastSeq := func() uint64 {
		c, err := h.s.conversation(context.Background(), ridB)
		if err != nil {
			t.Fatal(err)
		}
		return c.LastSeq
	}
	seqBefore := lastSeq()
	page := func(rid string) map[string]any {
		return h.ok("POST", "/api/v1/livechat/page.visited", map[string]any{"rid": rid, "token": "tok-A",
			"pageInfo": map[string]any{"change": "url", "title": "t", "location": map[string]any{"href": "h"}}}, nil)
	}
	if pb, pn := page(ridB), page("NOSUCHROOM"); !equalJSON(pb, pn) {
		t.Errorf("page.visited: B's room %v, missing room %v", pb, pn)
	}
	if got := lastSeq(); got != seqBefore {
		t.Errorf("page.visited with A's token stored in B's room: seq %d -> %d", seqBefore, got)
	}

	after := h.history("tok-B", ridB)
	if !equalJSON(before, after) {
		t.Errorf("B's room changed:\nbefore %v\nafter  %v", before, after)
	}
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-B", nil, nil)["room"].(map[string]any)
	if room["_id"] != ridB || room["open"] != true || room["departmentId"] != nil {
		t.Errorf("B's room %v", room)
	}
	// The error answers are the same as for a room that does not exist.
	code1, m1, _ := h.do("GET", "/api/v1/livechat/messages.history/"+ridB+"?token=tok-A", nil, nil)
	code2, m2, _ := h.do("GET", "/api/v1/livechat/messages.history/NOSUCHROOM?token=tok-A", nil, nil)
	if code1 != code2 || !equalJSON(m1, m2) {
		t.Errorf("another's room answers differently from a missing one: %v / %v", m1, m2)
	}
}

// --- agents ------------------------------------------------------------------------------------

func TestLoginLogout(t *testing.T) {
	h := newRH(t)
	code, m, _ := h.do("POST", "/api/v1/login", map[string]any{"user": "ann", "password": "ann-secret"}, nil)
	if code != 200 || m["status"] != "success" {
		t.Fatalf("login: %d %v", code, m)
	}
	data := m["data"].(map[string]any)
	me := data["me"].(map[string]any)
	if data["userId"] != "ann@x" || len(strOf(data["authToken"])) < 32 || me["username"] != "ann" || me["name"] != "Ann" {
		t.Errorf("login data %v", data)
	}
	for _, body := range []any{
		map[string]any{"username": "bob", "password": "bob-secret"},
		map[string]any{"user": "cid@x", "password": "cid-secret"},
		"user=ann&password=ann-secret",
	} {
		if s, ok := body.(string); ok {
			resp, err := http.Post(h.srv.URL+"/api/v1/login", "application/x-www-form-urlencoded", strings.NewReader(s))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("form login: %d", resp.StatusCode)
			}
			continue
		}
		if code, m, _ := h.do("POST", "/api/v1/login", body, nil); code != 200 {
			t.Errorf("login %v: %d %v", body, code, m)
		}
	}
	for _, body := range []any{
		map[string]any{"user": "ann", "password": "wrong"},
		map[string]any{"user": "nobody", "password": "x"},
		map[string]any{"user": "ann"},
		map[string]any{},
	} {
		code, m, _ := h.do("POST", "/api/v1/login", body, nil)
		wantErr(t, "bad login", code, m, 401, map[string]any{"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
	}
	hdr := map[string]string{"X-User-Id": "ann@x", "X-Auth-Token": data["authToken"].(string)}
	h.ok("GET", "/api/v1/livechat/custom-fields", nil, hdr)
	// The token survives a restart: a new surface over the same store.
	s2 := New(h.d, h.cfg, zerolog.Nop())
	e := gin.New()
	s2.Mount(e)
	srv2 := httptest.NewServer(e)
	defer srv2.Close()
	req, _ := http.NewRequest("GET", srv2.URL+"/api/v1/livechat/custom-fields", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("token after restart: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	code, m, _ = h.do("POST", "/api/v1/logout", nil, hdr)
	if code != 200 || !equalJSON(m, map[string]any{"status": "success", "data": map[string]any{"message": "You've been logged out!"}}) {
		t.Errorf("logout: %d %v", code, m)
	}
	code, m, _ = h.do("POST", "/api/v1/logout", nil, hdr)
	wantErr(t, "logout twice", code, m, 401, unauth401)
	code, m, _ = h.do("GET", "/api/v1/livechat/custom-fields", nil, hdr)
	wantErr(t, "after logout", code, m, 401, unauth401)
}

func TestAgentRoutesRefuseBadCredentials(t *testing.T) {
	h := newRH(t)
	good := h.login("ann", "ann-secret")
	other := h.login("bob", "bob-secret")
	creds := map[string]map[string]string{
		"none":          nil,
		"no token":      {"X-User-Id": good["X-User-Id"]},
		"no user":       {"X-Auth-Token": good["X-Auth-Token"]},
		"wrong token":   {"X-User-Id": good["X-User-Id"], "X-Auth-Token": "forged"},
		"another's id":  {"X-User-Id": other["X-User-Id"], "X-Auth-Token": good["X-Auth-Token"]},
		"unknown user":  {"X-User-Id": "nobody", "X-Auth-Token": good["X-Auth-Token"]},
		"visitor token": {"X-User-Id": good["X-User-Id"], "x-visitor-token": "tok"},
	}
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/livechat/custom-fields"},
		{"GET", "/api/v1/livechat/custom-fields/x"},
		{"POST", "/api/v1/livechat/messages"},
		{"POST", "/api/v1/livechat/room.forward"},
		{"PUT", "/api/v1/livechat/room.visitor"},
		{"GET", "/api/v1/livechat/transfer.history/x"},
		{"GET", "/api/v1/livechat/visitor/tok/room"},
		{"POST", "/api/v1/omnichannel/contact"},
		{"GET", "/api/v1/omnichannel/contact?contactId=x"},
		{"GET", "/api/v1/omnichannel/contact.search?email=a@b.c"},
		{"POST", "/api/v1/logout"},
	}
	for _, rt := range routes {
		for name, hdr := range creds {
			code, m, _ := h.do(rt.method, rt.path, "{}", hdr)
			wantErr(t, rt.method+" "+rt.path+" "+name, code, m, 401, unauth401)
		}
	}
}

func TestAgentRoutes(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.online("bob@x")
	ann := h.login("ann", "ann-secret")
	bob := h.login("bob", "bob-secret")
	cid := h.login("cid", "cid-secret")

	// livechat/messages: import as a visitor.
	m := h.ok("POST", "/api/v1/livechat/messages", map[string]any{"visitor": map[string]any{"token": "tok-imp", "name": "Imp"},
		"messages": []any{map[string]any{"msg": "one"}, map[string]any{"msg": "two"}}}, ann)
	msgs := m["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["username"] != "guest-1" || msgs[1].(map[string]any)["msg"] != "two" ||
		!isISO(strOf(msgs[0].(map[string]any)["ts"])) {
		t.Errorf("livechat/messages %v", m)
	}
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{}, `Body param "visitor" is required`},
		{map[string]any{"visitor": map[string]any{}}, `Body param "visitor.token" is required`},
		{map[string]any{"visitor": map[string]any{"token": "t"}}, `Body param "messages" is required`},
		{map[string]any{"visitor": map[string]any{"token": "t"}, "messages": "x"}, `Body param "messages" is not an array`},
		{map[string]any{"visitor": map[string]any{"token": "t"}, "messages": []any{}}, `Body param "messages" is empty`},
	} {
		code, m, _ := h.do("POST", "/api/v1/livechat/messages", tc.body, ann)
		wantErr(t, tc.want, code, m, 400, map[string]any{"success": false, "error": tc.want})
	}
	rid := h.room("tok-imp")

	// visitor/:token/room
	m = h.ok("GET", "/api/v1/livechat/visitor/tok-imp/room", nil, ann)
	rooms := m["rooms"].([]any)
	if len(rooms) != 1 || rooms[0].(map[string]any)["_id"] != rid || rooms[0].(map[string]any)["t"] != "l" {
		t.Errorf("visitor rooms %v", m)
	}
	// Bob serves only sales; the room has no department, so he may see it.
	if m = h.ok("GET", "/api/v1/livechat/visitor/nobody/room", nil, ann); len(m["rooms"].([]any)) != 0 {
		t.Errorf("unknown token rooms %v", m)
	}

	// room.forward to an agent, then to a department.
	served := h.ok("GET", "/api/v1/livechat/room?token=tok-imp", nil, nil)["room"].(map[string]any)["servedBy"].(map[string]any)["_id"]
	server, otherAgent, otherHdr := ann, "bob@x", bob
	if served == "bob@x" {
		server, otherAgent, otherHdr = bob, "ann@x", ann
	}
	code, m, _ := h.do("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": rid, "userId": otherAgent}, otherHdr)
	wantErr(t, "forward by a non-serving agent", code, m, 400, map[string]any{"success": false,
		"error": "Not authorized [error-not-authorized]", "errorType": "error-not-authorized"})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": rid, "userId": served}, server)
	wantErr(t, "forward to same", code, m, 400, map[string]any{"success": false, "errorType": "error-selected-agent-room-agent-are-same"})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": rid, "userId": "cid@x"}, server)
	wantErr(t, "forward to offline", code, m, 400, map[string]any{"success": false, "errorType": "error-user-is-offline"})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": "nope", "userId": otherAgent}, server)
	wantErr(t, "forward unknown room", code, m, 400, map[string]any{"success": false,
		"error": "Invalid room [error-invalid-room]", "errorType": "error-invalid-room"})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.forward", map[string]any{"userId": otherAgent}, server)
	wantErr(t, "forward without roomId", code, m, 400, map[string]any{"success": false, "error": "Match error: Missing key 'roomId'"})
	m = h.ok("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": rid, "userId": otherAgent}, server)
	if len(m) != 1 {
		t.Errorf("forward answer %v", m)
	}
	room := h.ok("GET", "/api/v1/livechat/room?token=tok-imp", nil, nil)["room"].(map[string]any)
	if room["servedBy"].(map[string]any)["_id"] != otherAgent {
		t.Errorf("after forward %v", room["servedBy"])
	}
	h.ok("POST", "/api/v1/livechat/room.forward", map[string]any{"roomId": rid, "departmentId": "sales"}, otherHdr)

	// transfer.history
	m = h.ok("GET", "/api/v1/livechat/transfer.history/"+rid, nil, cid)
	hist := m["history"].([]any)
	if len(hist) != 2 || m["total"] != float64(2) || m["count"] != float64(2) || m["offset"] != float64(0) {
		t.Fatalf("transfer.history %v", m)
	}
	first := hist[0].(map[string]any)
	if first["scope"] != "agent" || first["transferredTo"].(map[string]any)["_id"] != otherAgent ||
		first["transferredBy"].(map[string]any)["type"] != "agent" || hist[1].(map[string]any)["scope"] != "department" {
		t.Errorf("transfer history entries %v", hist)
	}
	m = h.ok("GET", "/api/v1/livechat/transfer.history/"+rid+"?offset=1&count=5", nil, cid)
	if len(m["history"].([]any)) != 1 || m["total"] != float64(2) {
		t.Errorf("paged transfer.history %v", m)
	}
	code, m, _ = h.do("GET", "/api/v1/livechat/transfer.history/nope", nil, cid)
	wantErr(t, "transfer.history unknown", code, m, 400, errA("invalid-room"))

	// A room of a department the agent does not serve: bob serves sales only.
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-sup", "department": "sup"}}, nil)
	ridSup := h.room("tok-sup")
	code, m, _ = h.do("GET", "/api/v1/livechat/transfer.history/"+ridSup, nil, bob)
	wantErr(t, "transfer.history other department", code, m, 403, map[string]any{"success": false, "error": "unauthorized"})
	if m = h.ok("GET", "/api/v1/livechat/visitor/tok-sup/room", nil, bob); len(m["rooms"].([]any)) != 0 {
		t.Errorf("bob sees a support room: %v", m)
	}
	code, m, _ = h.do("POST", "/api/v1/livechat/messages", map[string]any{"visitor": map[string]any{"token": "tok-sup"},
		"messages": []any{map[string]any{"msg": "x"}}}, bob)
	wantErr(t, "import into other department", code, m, 403, map[string]any{"success": false, "error": "unauthorized"})

	// room.visitor
	vid := h.ok("GET", "/api/v1/livechat/visitor/tok-imp", nil, nil)["visitor"].(map[string]any)["_id"].(string)
	other := h.visitor("tok-other", "Other")["_id"].(string)
	m = h.ok("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": vid, "newVisitorId": vid}, cid)
	if m["room"].(map[string]any)["_id"] != rid {
		t.Errorf("room.visitor %v", m)
	}
	code, m, _ = h.do("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": other, "newVisitorId": vid}, cid)
	wantErr(t, "room.visitor wrong old", code, m, 400, errB("invalid-room-visitor"))
	code, m, _ = h.do("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": vid, "newVisitorId": "nope"}, cid)
	wantErr(t, "room.visitor unknown visitor", code, m, 400, errB("invalid-visitor"))
	code, m, _ = h.do("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": "nope", "oldVisitorId": vid, "newVisitorId": vid}, cid)
	wantErr(t, "room.visitor unknown room", code, m, 400, errB("invalid-room"))
	m = h.ok("PUT", "/api/v1/livechat/room.visitor", map[string]any{"rid": rid, "oldVisitorId": vid, "newVisitorId": other}, cid)
	if r := m["room"].(map[string]any); r["_id"] != rid || r["v"].(map[string]any)["_id"] != other {
		t.Errorf("room.visitor change %v", m)
	}

	// Contacts.
	m = h.ok("POST", "/api/v1/omnichannel/contact", map[string]any{"token": "tok-c", "name": "Carl", "email": "carl@example.com",
		"phone": "+4912345", "customFields": map[string]any{"plan": "gold"}, "contactManager": map[string]any{"username": "ann"}}, ann)
	cidV := m["contact"].(string)
	if cidV == "" {
		t.Fatalf("contact %v", m)
	}
	m = h.ok("GET", "/api/v1/omnichannel/contact?contactId="+cidV, nil, ann)
	c := m["contact"].(map[string]any)
	if c["name"] != "Carl" || c["token"] != "tok-c" || !equalJSON(c["contactManager"], map[string]any{"username": "ann"}) ||
		!equalJSON(c["livechatData"], map[string]any{"plan": "gold"}) {
		t.Errorf("contact %v", c)
	}
	if m = h.ok("GET", "/api/v1/omnichannel/contact?contactId=nope", nil, ann); len(m) != 1 {
		t.Errorf("unknown contact %v", m)
	}
	code, m, _ = h.do("POST", "/api/v1/omnichannel/contact", map[string]any{"token": "tok-c", "name": "C", "contactManager": map[string]any{"username": "zed"}}, ann)
	wantErr(t, "unknown manager", code, m, 400, map[string]any{"success": false, "error": "error-contact-manager-not-found"})
	code, m, _ = h.do("POST", "/api/v1/omnichannel/contact", map[string]any{"token": "tok-c"}, ann)
	wantErr(t, "contact without name", code, m, 400, map[string]any{"success": false, "errorType": "Match.Error", "path": "name"})
	// contact.search finds visitors that have a conversation.
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-srch", "email": "find@example.com", "phone": "+111"}}, nil)
	h.room("tok-srch")
	for _, q := range []string{"email=FIND@example.com", "phone=%2B111"} {
		m = h.ok("GET", "/api/v1/omnichannel/contact.search?"+q, nil, ann)
		if c, _ := m["contact"].(map[string]any); c == nil || c["token"] != "tok-srch" {
			t.Errorf("contact.search %s: %v", q, m)
		}
	}
	// ... and, as Rocket.Chat's (LivechatVisitors.findOneGuestByEmailAddress,
	// checked), visitors that have none yet.
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-noroom", "email": "noroom@example.com", "phone": "+222"}}, nil)
	for _, q := range []string{"email=noroom@example.com", "phone=%2B222"} {
		m = h.ok("GET", "/api/v1/omnichannel/contact.search?"+q, nil, ann)
		if c, _ := m["contact"].(map[string]any); c == nil || c["token"] != "tok-noroom" {
			t.Errorf("contact.search of a visitor without rooms %s: %v", q, m)
		}
	}
	if m = h.ok("GET", "/api/v1/omnichannel/contact.search?email=none@example.com", nil, ann); len(m) != 1 {
		t.Errorf("no match %v", m)
	}
	code, m, _ = h.do("GET", "/api/v1/omnichannel/contact.search", nil, ann)
	wantErr(t, "search without params", code, m, 400, errB("error-invalid-params"))

	// Custom field definitions: TestCustomFieldRoutes.
}

// --- plumbing ---------------------------------------------------------------------------------

func TestRESTPlumbing(t *testing.T) {
	h := newRH(t)
	// CORS preflight.
	req, _ := http.NewRequest("OPTIONS", h.srv.URL+"/api/v1/livechat/message", nil)
	req.Header.Set("Origin", "https://other.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Access-Control-Allow-Methods") != corsMethods || resp.Header.Get("Access-Control-Allow-Headers") != corsHeaders {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	_, _, hdr := h.do("GET", "/api/v1/livechat/config", nil, nil)
	if hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header on a response")
	}
	// 404 and 405.
	code, m, _ := h.do("GET", "/api/v1/livechat/nope", nil, nil)
	wantErr(t, "unknown route", code, m, 404, map[string]any{"success": false})
	code, m, _ = h.do("GET", "/api/v1/", nil, nil)
	wantErr(t, "root", code, m, 404, map[string]any{"success": false})
	code, m, hdr = h.do("PATCH", "/api/v1/livechat/message/abc", "{}", nil)
	wantErr(t, "wrong method", code, m, 405, map[string]any{"status": "error", "message": "API endpoint does not exist"})
	if hdr.Get("Allow") != "DELETE, GET, PUT, OPTIONS" {
		t.Errorf("Allow %q", hdr.Get("Allow"))
	}
	code, m, hdr = h.do("GET", "/api/v1/livechat/room.close", nil, nil)
	wantErr(t, "GET on POST route", code, m, 405, map[string]any{"status": "error"})
	if hdr.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("Allow %q", hdr.Get("Allow"))
	}
	// Body limit and malformed bodies.
	big := `{"token":"` + strings.Repeat("x", 9<<10) + `"}`
	code, m, _ = h.do("POST", "/api/v1/livechat/visitor.status", big, nil)
	wantErr(t, "body too large", code, m, 413, map[string]any{"success": false})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.close", `[1,2]`, nil)
	wantErr(t, "array body", code, m, 400, map[string]any{"success": false})
	code, m, _ = h.do("POST", "/api/v1/livechat/room.close", "", nil)
	wantErr(t, "empty body", code, m, 400, map[string]any{"success": false, "errorType": "Match.Error", "path": "rid"})
	// GET with a JSON content type and a trailing "?" (what the SDK sends).
	h.ok("GET", "/api/v1/livechat/config?", nil, nil)
}

// --- rendering --------------------------------------------------------------------------------

func TestRenderMessage(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	v := h.visitor("tok-x", "Xena")
	rid := h.room("tok-x")
	s := h.s
	at := h.d.Now()
	base := model.Event{Conv: model.ConvID(rid), ID: "EV1", At: at, Visibility: model.VisibleAll}
	vis := model.Author{Kind: model.AuthorVisitor, ID: v["_id"].(string), Name: "Xena"}
	agent := model.Author{Kind: model.AuthorAgent, ID: "ann@x", Name: "Ann"}
	mk := func(f func(e *model.Event)) *model.Event { e := base; f(&e); return &e }
	cases := []struct {
		name string
		e    *model.Event
		want map[string]any // nil: no Rocket.Chat form
	}{
		{"visitor text", mk(func(e *model.Event) { e.Kind, e.Author, e.Text, e.ClientKey = model.KindMessage, vis, "hi", "CK" }),
			map[string]any{"_id": "CK", "msg": "hi", "token": "tok-x", "alias": "Xena"}},
		{"agent text", mk(func(e *model.Event) { e.Kind, e.Author, e.Text = model.KindMessage, agent, "yo" }),
			map[string]any{"_id": "EV1", "msg": "yo", "u": map[string]any{"_id": "ann@x", "username": "ann", "name": "Ann"}}},
		{"agents only", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Text, e.Visibility = model.KindMessage, agent, "note", model.VisibleAgents
		}), nil},
		{"started", mk(func(e *model.Event) { e.Kind, e.Author, e.Subtype = model.KindSystem, model.System, model.SysStarted }),
			map[string]any{"t": "livechat-started", "msg": "", "groupable": false, "u": map[string]any{"_id": v["_id"], "username": "guest-1", "name": "Xena"}}},
		{"assigned", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Subtype, e.Vars = model.KindSystem, model.System, model.SysAssigned, map[string]string{"agent_id": "ann@x"}
		}), map[string]any{"t": "command", "msg": "connected", "u": map[string]any{"_id": "ann@x", "username": "ann", "name": "Ann"}}},
		{"closed by agent", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Subtype, e.Vars = model.KindSystem, model.System, model.SysClosed, map[string]string{"by_kind": "agent", "by_id": "ann@x"}
		}), map[string]any{"t": "livechat-close", "msg": "Closed by agent", "transcriptRequested": false}},
		{"closed with reason", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Subtype, e.Vars = model.KindSystem, model.System, model.SysClosed, map[string]string{"by_kind": "system", "reason": "idle"}
		}), map[string]any{"t": "livechat-close", "msg": "idle", "u": map[string]any{"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat"}}},
		{"welcome", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Subtype, e.Text = model.KindSystem, model.System, model.SysWelcome, "Welcome!"
		}),
			map[string]any{"msg": "Welcome!", "u": map[string]any{"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat"}}},
		{"queued", mk(func(e *model.Event) { e.Kind, e.Author, e.Subtype = model.KindSystem, model.System, model.SysQueued }), nil},
		{"form", mk(func(e *model.Event) { e.Kind, e.Author, e.Form = model.KindForm, vis, &model.Form{} }), nil},
		{"deleted", mk(func(e *model.Event) {
			e.Kind, e.Author, e.Deleted, e.EditedAt, e.EditedBy = model.KindMessage, vis, true, at, &vis
		}), map[string]any{"t": "rm", "msg": ""}},
		{"foreign file", mk(func(e *model.Event) {
			e.Kind, e.Author, e.File = model.KindFile, agent, &model.File{Name: "a.pdf", URL: "https://cdn.example/a.pdf"}
		}), map[string]any{"msg": "https://cdn.example/a.pdf"}},
	}
	for _, tc := range cases {
		got := renderedMap(t, s, tc.e)
		if tc.want == nil {
			if got != nil {
				t.Errorf("%s: want nil, got %v", tc.name, got)
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: got nil", tc.name)
			continue
		}
		if got["rid"] != rid {
			t.Errorf("%s: rid %v", tc.name, got["rid"])
		}
		if _, ok := got["ts"].(time.Time); !ok {
			t.Errorf("%s: ts is %T, want time.Time", tc.name, got["ts"])
		}
		for k, w := range tc.want {
			if !equalJSON(got[k], w) {
				t.Errorf("%s: %s = %#v, want %#v", tc.name, k, got[k], w)
			}
		}
	}
	// Transfers.
	tr := mk(func(e *model.Event) {
		e.Kind, e.Author, e.Subtype = model.KindSystem, model.System, model.SysTransferred
		e.Vars = map[string]string{"from_agent": "ann@x", "to_agent": "bob@x", "by_kind": "agent", "by_id": "ann@x"}
	})
	got := renderedMap(t, s, tr)
	td := got["transferData"].(map[string]any)
	if got["t"] != "livechat_transfer_history" || td["scope"] != "agent" ||
		!equalJSON(td["transferredTo"], map[string]any{"_id": "bob@x", "username": "bob", "name": "Bob"}) {
		t.Errorf("transfer %v", got)
	}
	// restJSON turns every nested time into an ISO string.
	out := isoDates(map[string]any{"a": at, "b": []any{map[string]any{"c": at}}, "d": []map[string]any{{"e": at}}})
	b, _ := json.Marshal(out)
	iso := isoTime(at)
	if strings.Count(string(b), `"`+iso+`"`) != 3 {
		t.Errorf("isoDates: %s", b)
	}
	// renderRoom of a closed room: no open key, closer.
	conv, err := h.d.Close(context.Background(), model.ConvID(rid), vis, "", "")
	if err != nil {
		t.Fatal(err)
	}
	room := s.renderRoom(&conv, nil, "")
	if _, ok := room["open"]; ok || room["closer"] != "visitor" || room["closedAt"] == nil ||
		room["v"].(map[string]any)["token"] != "tok-x" || room["v"].(map[string]any)["status"] != "offline" {
		t.Errorf("closed room %v", room)
	}
}

// TestContactsOutOfReach: the contact routes show an agent only visitors it
// may reach (no conversation, or a newest conversation it may read), as the
// LiveChat agent API's get_customer does: bob (sales) cannot read, find or
// overwrite a visitor of the support department that ann serves.
func TestContactsOutOfReach(t *testing.T) {
	h := newRH(t)
	h.online("ann@x")
	h.ok("POST", "/api/v1/livechat/visitor", map[string]any{"visitor": map[string]any{"token": "tok-sup", "name": "Sue",
		"email": "sue@example.com", "phone": "+222", "department": "sup"}}, nil)
	h.room("tok-sup")
	vid := h.ok("GET", "/api/v1/livechat/visitor/tok-sup", nil, nil)["visitor"].(map[string]any)["_id"].(string)
	ann, bob := h.login("ann", "ann-secret"), h.login("bob", "bob-secret")

	for _, tc := range []struct {
		name, path string
	}{
		{"contact", "/api/v1/omnichannel/contact?contactId=" + vid},
		{"search by email", "/api/v1/omnichannel/contact.search?email=sue@example.com"},
		{"search by phone", "/api/v1/omnichannel/contact.search?phone=%2B222"},
	} {
		if m := h.ok("GET", tc.path, nil, ann); m["contact"] == nil {
			t.Errorf("%s: ann (support) does not see the contact: %v", tc.name, m)
		}
		if m := h.ok("GET", tc.path, nil, bob); len(m) != 1 {
			t.Errorf("%s: bob (sales) sees a support visitor: %v", tc.name, m)
		}
	}
	code, m, _ := h.do("POST", "/api/v1/omnichannel/contact", map[string]any{"token": "tok-sup", "name": "Overwritten"}, bob)
	wantErr(t, "bob overwrites the contact", code, m, 403, map[string]any{"success": false, "error": "unauthorized"})
	if got := h.ok("GET", "/api/v1/livechat/visitor/tok-sup", nil, nil)["visitor"].(map[string]any)["name"]; got != "Sue" {
		t.Errorf("visitor name %v after a refused overwrite", got)
	}
	// A new contact (no conversation yet) is anyone's to create and read.
	nv := h.ok("POST", "/api/v1/omnichannel/contact", map[string]any{"token": "tok-new", "name": "Nia"}, bob)["contact"].(string)
	if m := h.ok("GET", "/api/v1/omnichannel/contact?contactId="+nv, nil, bob); m["contact"] == nil {
		t.Errorf("bob's new contact: %v", m)
	}
}
