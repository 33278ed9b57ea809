package main

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	testLicence   = "4242"
	agentToken    = "test-agent-token-0123456789"
	agentPassword = "test-agent-password"
)

// waitLimit bounds every wait of these tests for something that must
// happen (a frame, a push, a state seen through the API, a process
// listening). It only guards against a hung test, nothing asserts how fast
// anything is: generous, because CI's 2 cores may be loaded many times over
// (the race detector, the other packages' tests, the processes of the
// multi-process tests).
const waitLimit = 2 * time.Minute

// gateway is one in-process chatgate on 127.0.0.1 for a test.
type gateway struct {
	addr   string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func writeConfig(t *testing.T, withAgent bool) string {
	t.Helper()
	cfg := "license:\n  id: \"" + testLicence + "\"\nlivechat:\n  v2:\n    poll_timeout: 1h\n"
	if withAgent {
		cfg += "agents:\n  - id: jane@example.com\n    name: Jane Doe\n    job_title: Support Agent\n    avatar: cdn.example/jane.png\n    token: " + agentToken + "\n    password: " + agentPassword + "\n"
	}
	p := filepath.Join(t.TempDir(), "chatgate.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startGateway runs serve() until the test stops it; it fails the test if
// the gateway does not come up.
func startGateway(t *testing.T, configPath, dataPath string) *gateway {
	t.Helper()
	return startGatewayWith(t, configPath, serveOptions{DataPath: dataPath})
}

// startGatewayWith is startGateway with more serve options (an empty
// DataPath is a temporary file).
func startGatewayWith(t *testing.T, configPath string, o serveOptions) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	up := make(chan string, 1)
	o.ConfigPath, o.Addr, o.Stderr = configPath, "127.0.0.1:0", g.stderr
	o.Getenv = func(string) string { return "" }
	o.Listening = func(a string) { up <- a }
	if o.DataPath == "" {
		o.DataPath = filepath.Join(t.TempDir(), "data.db")
	}
	go func() { g.done <- serve(ctx, o) }()
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

func (g *gateway) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.cancel = nil
}

// --- v2 visitor client -------------------------------------------------------

type visitor struct {
	t       *testing.T
	base    string
	id, sid string
}

func (v *visitor) do(method, action string, form url.Values) (int, map[string]any) {
	v.t.Helper()
	form.Set("licence_id", testLicence)
	u := v.base + "/visitors/" + url.PathEscape(v.id) + "/chat/" + action
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + form.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("X-API-Version", "2")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		v.t.Fatalf("%s: not JSON: %v", action, err)
	}
	return resp.StatusCode, m
}

func (v *visitor) start() {
	v.t.Helper()
	code, m := v.do(http.MethodPost, "start", url.Values{"welcome_message": {"Welcome!"}, "name": {"Vera"}})
	if code != 200 {
		v.t.Fatalf("start: %d %v", code, m)
	}
	v.sid = m["secured_session_id"].(string)
}

func (v *visitor) send(text string) {
	v.t.Helper()
	if code, m := v.do(http.MethodPost, "send_message", url.Values{"secured_session_id": {v.sid}, "message": {text}}); code != 200 {
		v.t.Fatalf("send_message: %d %v", code, m)
	}
}

func (v *visitor) poll() []map[string]any {
	v.t.Helper()
	code, m := v.do(http.MethodGet, "get_pending_messages", url.Values{"secured_session_id": {v.sid}})
	if code != 200 {
		v.t.Fatalf("get_pending_messages: %d %v", code, m)
	}
	var out []map[string]any
	for _, e := range m["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// --- agent RTM client ----------------------------------------------------------

type agent struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan map[string]any
	n      int
}

func dialAgent(t *testing.T, addr string) *agent {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v3.5/agent/rtm/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, conn: conn, frames: make(chan map[string]any, 256)}
	go func() {
		defer close(a.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				a.frames <- m
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return a
}

// next returns the next frame matching type and action.
func (a *agent) next(typ, action string) map[string]any {
	a.t.Helper()
	return a.nextWhere(typ+" "+action, func(f map[string]any) bool { return f["type"] == typ && f["action"] == action })
}

// nextWhere returns the next frame satisfying ok (what names it in a
// failure).
func (a *agent) nextWhere(what string, ok func(f map[string]any) bool) map[string]any {
	a.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case f, open := <-a.frames:
			if !open {
				a.t.Fatalf("socket closed waiting for %s", what)
			}
			if ok(f) {
				return f
			}
		case <-timeout:
			a.t.Fatalf("no %s", what)
		}
	}
}

// call sends a request and returns its response payload (failing on error).
func (a *agent) call(action string, payload any) map[string]any {
	a.t.Helper()
	a.n++
	rid := fmt.Sprintf("r%d", a.n)
	if err := a.conn.WriteJSON(map[string]any{"request_id": rid, "action": action, "payload": payload}); err != nil {
		a.t.Fatal(err)
	}
	f := a.next("response", action)
	if f["request_id"] != rid || f["success"] != true {
		a.t.Fatalf("%s: %v", action, f)
	}
	p, _ := f["payload"].(map[string]any)
	return p
}

func TestEndToEndV2VisitorAndAgentRTM(t *testing.T) {
	cfg := writeConfig(t, true)
	data := filepath.Join(t.TempDir(), "chatgate.db")
	g := startGateway(t, cfg, data)
	base := "http://" + g.addr

	ag := dialAgent(t, g.addr)
	login := ag.call("login", map[string]any{"token": "Bearer " + agentToken})
	if prof, _ := login["my_profile"].(map[string]any); prof["id"] != "jane@example.com" {
		t.Fatalf("login profile: %v", login)
	}

	// A v2 visitor starts a chat: the agent is told.
	v := &visitor{t: t, base: base, id: "visitor-1"}
	v.start()
	inc := ag.next("push", "incoming_chat")
	chat := inc["payload"].(map[string]any)["chat"].(map[string]any)
	chatID := chat["id"].(string)
	threadID := chat["thread"].(map[string]any)["id"].(string)

	// The agent replies; the visitor's poll shows agent_details and the reply.
	ag.call("send_event", map[string]any{"chat_id": chatID, "event": map[string]any{"type": "message", "text": "Hello, how can I help?"}})
	evs := v.poll()
	var sawDetails, sawReply bool
	for _, e := range evs {
		switch {
		case e["type"] == "agent_details":
			sawDetails = e["agent"].(map[string]any)["name"] == "Jane Doe"
		case e["type"] == "message" && e["user_type"] == "agent" && e["text"] == "Hello, how can I help?":
			sawReply = true
		}
	}
	if !sawDetails || !sawReply {
		t.Fatalf("visitor poll lacks agent_details or reply: %v", evs)
	}

	// The visitor sends more; the agent receives them in order.
	msgs := []string{"first", "second", "third", "fourth"}
	for _, m := range msgs {
		v.send(m)
	}
	for _, want := range msgs {
		for {
			p := ag.next("push", "incoming_event")["payload"].(map[string]any)
			ev := p["event"].(map[string]any)
			if ev["type"] != "message" || ev["author_id"] == "jane@example.com" {
				continue
			}
			if ev["text"] != want || p["thread_id"] != threadID {
				t.Fatalf("agent got %v, want %q", p, want)
			}
			break
		}
	}

	// The agent deactivates: the visitor sees the chat closed.
	ag.call("deactivate_chat", map[string]any{"id": chatID})
	ag.next("push", "chat_deactivated")
	evs = v.poll()
	last := evs[len(evs)-1]
	if last["type"] != "chat_closed" || last["user_type"] != "agent" {
		t.Fatalf("last event %v, want chat_closed by agent", last)
	}
	if code, m := v.do(http.MethodPost, "send_message", url.Values{"secured_session_id": {v.sid}, "message": {"late"}}); code != 400 || m["error"] != "Chat is closed" {
		t.Fatalf("send after close: %d %v", code, m)
	}

	// Health, readiness and metrics while up.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "chatgate_events_committed_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %.200s", path, resp.StatusCode, b)
		}
	}

	// Restart on the same data file: history and message ids intact.
	before := evs
	g.stop()
	g2 := startGateway(t, cfg, data)
	v.base = "http://" + g2.addr
	after := v.poll()
	bj, _ := json.Marshal(before)
	aj, _ := json.Marshal(after)
	if !bytes.Equal(bj, aj) {
		t.Fatalf("history changed across restart:\nbefore %s\nafter  %s", bj, aj)
	}
	ag2 := dialAgent(t, g2.addr)
	ag2.call("login", map[string]any{"token": "Bearer " + agentToken})
	got := ag2.call("get_chat", map[string]any{"chat_id": chatID, "thread_id": threadID})
	thread := got["thread"].(map[string]any)
	if thread["active"] != false {
		t.Fatalf("thread should be inactive after restart: %v", thread)
	}
	var texts []string
	for _, e := range thread["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == "message" {
			texts = append(texts, ev["text"].(string))
		}
	}
	if want := "Hello, how can I help?,first,second,third,fourth"; strings.Join(texts, ",") != want {
		t.Fatalf("agent history after restart %q, want %q", strings.Join(texts, ","), want)
	}

	// A new chat after restart continues normally.
	v.start()
	ag2.next("push", "incoming_chat")
}

func TestDemoAgentCredentialsPrintedAndKept(t *testing.T) {
	data := filepath.Join(t.TempDir(), "demo.db")
	g := startGateway(t, "", data)
	out := g.stderr.String()
	i := strings.Index(out, "token:")
	if i < 0 {
		t.Fatalf("no demo token printed:\n%s", out)
	}
	token := strings.Fields(out[i+len("token:"):])[0]
	ag := dialAgent(t, g.addr)
	ag.call("login", map[string]any{"token": "Bearer " + token})
	g.stop()
	g2 := startGateway(t, "", data)
	if !strings.Contains(g2.stderr.String(), token) {
		t.Fatal("demo token changed across restart")
	}
}

func TestShutdownMakesReadyzFailAndStops(t *testing.T) {
	g := startGateway(t, writeConfig(t, true), filepath.Join(t.TempDir(), "s.db"))
	resp, err := http.Get("http://" + g.addr + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !json.Valid(b) {
		t.Fatalf("404 answer: %d %s", resp.StatusCode, b)
	}
	g.stop()
	if _, err := http.Get("http://" + g.addr + "/healthz"); err == nil {
		t.Fatal("server still answering after stop")
	}
}

// TestV2ConversationReadByRocketChatAgent: a LiveChat v2 visitor's chat is
// listed and read by an agent on the Rocket.Chat agent routes.
func TestV2ConversationReadByRocketChatAgent(t *testing.T) {
	g := startGateway(t, writeConfig(t, true), filepath.Join(t.TempDir(), "x.db"))
	base := "http://" + g.addr
	v := &visitor{t: t, base: base, id: "cross-1"}
	v.start()
	v.send("hello from a v2 widget")

	rc := func(method, path string, body any, hdr map[string]string) map[string]any {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		for k, val := range hdr {
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, m, err)
		}
		return m
	}
	login := rc("POST", "/api/v1/login", map[string]any{"user": "jane", "password": agentPassword}, nil)
	data := login["data"].(map[string]any)
	hdr := map[string]string{"X-User-Id": data["userId"].(string), "X-Auth-Token": data["authToken"].(string)}
	rooms := rc("GET", "/api/v1/livechat/rooms?open=true", nil, hdr)["rooms"].([]any)
	if len(rooms) != 1 {
		t.Fatalf("rooms %v", rooms)
	}
	rid := rooms[0].(map[string]any)["_id"].(string)
	sync := rc("GET", "/api/v1/chat.syncMessages?roomId="+rid+"&lastUpdate=2000-01-01T00:00:00.000Z", nil, hdr)
	var texts []string
	for _, m := range sync["result"].(map[string]any)["updated"].([]any) {
		if msg := m.(map[string]any); msg["t"] == nil {
			texts = append(texts, msg["msg"].(string))
		}
	}
	if strings.Join(texts, "|") != "Welcome!|hello from a v2 widget" {
		t.Fatalf("agent read %q", texts)
	}
}

// TestUploadsServedWithoutRocketChat: with the Rocket.Chat surface off, a
// file uploaded through the LiveChat agent Web API is still served at the
// URL upload_file returned.
func TestUploadsServedWithoutRocketChat(t *testing.T) {
	cfg := writeConfig(t, true)
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(b, []byte("rocketchat:\n  enabled: false\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg, filepath.Join(t.TempDir(), "u.db"))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "note.txt")
	fw.Write([]byte("hello file"))
	mw.Close()
	req, _ := http.NewRequest("POST", "http://"+g.addr+"/v3.5/agent/action/upload_file", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ URL string }
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || up.URL == "" {
		t.Fatalf("upload_file: %d %+v %v", resp.StatusCode, up, err)
	}
	got, err := http.Get(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if got.StatusCode != 200 || string(data) != "hello file" {
		t.Fatalf("GET %s: %d %q", up.URL, got.StatusCode, data)
	}
	if miss, _ := http.Get("http://" + g.addr + "/file-upload/00000000000000000000000000000000/x"); miss.StatusCode != 404 {
		t.Fatalf("unknown file: %d", miss.StatusCode)
	}
}
