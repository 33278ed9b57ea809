package visitorv2

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strconv"
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
)

const lic = "12345"

type harness struct {
	t   testing.TB
	srv *httptest.Server
	d   *desk.Desk
	s   *Surface
}

func newHarness(t testing.TB, poll time.Duration) *harness {
	t.Helper()
	return newHarnessOn(t, poll, nil)
}

// newHarnessOn is newHarness whose desk uses wrap(the bbolt store) when
// wrap is set.
func newHarnessOn(t testing.TB, poll time.Duration, wrap func(store.Store) store.Store) *harness {
	t.Helper()
	bst, err := bolt.Open(filepath.Join(t.TempDir(), "v2.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store = bst
	if wrap != nil {
		st = wrap(bst)
	}
	agents := []model.Agent{{ID: "a@x", Name: "Ann", JobTitle: "Support", Avatar: "cdn/ann.png"}}
	r := routing.New(agents, true)
	d := desk.New(desk.Options{Store: st, Router: r, Bus: hub.NewBus(), Actors: hub.NewActors(16),
		Limits: desk.Limits{MaxText: 100}, Logger: zerolog.Nop(),
		Departs: []model.Department{{ID: "0", Name: "General"}, {ID: "7", Name: "Sales"}}})
	s := New(d, Config{LicenceID: lic, PollTimeout: poll, SweepEvery: 20 * time.Millisecond, MaxBody: 4096}, zerolog.Nop())
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	s.Mount(e)
	srv := httptest.NewServer(e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	sdone := make(chan struct{})
	go func() { _ = s.Run(ctx); close(sdone) }()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-sdone
		st.Close()
	})
	return &harness{t: t, srv: srv, d: d, s: s}
}

// call sends a v2 request; body is form-encoded unless ctype says JSON.
func (h *harness) call(method, path, ctype, body string, hdr map[string]string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-API-Version", "2")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
	}
	return resp.StatusCode, m
}

const form = "application/x-www-form-urlencoded"

func (h *harness) start(visitor string) string {
	h.t.Helper()
	return h.restart(visitor, "")
}

// restart starts a chat sending sid as the current chat's
// secured_session_id ("" for none).
func (h *harness) restart(visitor, sid string) string {
	h.t.Helper()
	code, m := h.call("POST", "/visitors/"+visitor+"/chat/start", form, "licence_id="+lic+"&welcome_message=Hi&name=Vic&secured_session_id="+sid, nil)
	if code != 200 {
		h.t.Fatalf("start: %d %v", code, m)
	}
	got, _ := m["secured_session_id"].(string)
	if len(got) < 32 || m["banned"] != false {
		h.t.Fatalf("start answer %v", m)
	}
	return got
}

func (h *harness) poll(visitor, sid, last string) []map[string]any {
	h.t.Helper()
	q := url.Values{"licence_id": {lic}, "secured_session_id": {sid}}
	if last != "" {
		q.Set("last_message_id", last)
	}
	code, m := h.call("GET", "/visitors/"+visitor+"/chat/get_pending_messages?"+q.Encode(), "", "", nil)
	if code != 200 {
		h.t.Fatalf("poll: %d %v", code, m)
	}
	raw, _ := m["events"].([]any)
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out
}

func TestStartSendPollClose(t *testing.T) {
	h := newHarness(t, time.Hour)
	sid := h.start("v1")
	for _, text := range []string{"one", "two"} {
		code, m := h.call("POST", "/visitors/v1/chat/send_message", form,
			url.Values{"licence_id": {lic}, "secured_session_id": {sid}, "message": {text}}.Encode(), nil)
		if code != 200 || m["success"] != true {
			t.Fatalf("send: %d %v", code, m)
		}
	}
	// JSON body works the same.
	code, m := h.call("POST", "/visitors/v1/chat/send_message", "application/json",
		`{"licence_id":`+lic+`,"secured_session_id":"`+sid+`","message":"three"}`, nil)
	if code != 200 {
		t.Fatalf("json send: %d %v", code, m)
	}
	evs := h.poll("v1", sid, "")
	var texts []string
	for i, e := range evs {
		if int(e["message_id"].(float64)) <= 0 || (i > 0 && e["message_id"].(float64) <= evs[i-1]["message_id"].(float64)) {
			t.Fatalf("message ids not increasing: %v", evs)
		}
		if e["type"] == "message" {
			texts = append(texts, e["user_type"].(string)+":"+e["text"].(string))
		}
	}
	want := "agent:Hi visitor:one visitor:two visitor:three"
	if got := strings.Join(texts, " "); got != want {
		t.Fatalf("messages %q, want %q", got, want)
	}
	// No agent is online: the chat is queued, no agent_details yet.
	for _, e := range evs {
		if e["type"] == "agent_details" {
			t.Fatalf("agent_details without an agent: %v", e)
		}
	}
	// Cursor is inclusive.
	last := evs[len(evs)-1]["message_id"].(float64)
	again := h.poll("v1", sid, strconv.FormatFloat(last, 'f', -1, 64))
	if len(again) != 1 || again[0]["text"] != "three" {
		t.Fatalf("poll from last id: %v", again)
	}
	code, m = h.call("POST", "/visitors/v1/chat/close", form, "licence_id="+lic+"&secured_session_id="+sid, nil)
	if code != 200 || m["success"] != true {
		t.Fatalf("close: %d %v", code, m)
	}
	// Closing again succeeds (retries are safe); sending fails clearly.
	if code, _ := h.call("POST", "/visitors/v1/chat/close", form, "licence_id="+lic+"&secured_session_id="+sid, nil); code != 200 {
		t.Fatalf("second close: %d", code)
	}
	code, m = h.call("POST", "/visitors/v1/chat/send_message", form, "licence_id="+lic+"&secured_session_id="+sid+"&message=x", nil)
	if code != 400 || m["error"] != "Chat is closed" {
		t.Fatalf("send after close: %d %v", code, m)
	}
	evs = h.poll("v1", sid, "")
	lastEv := evs[len(evs)-1]
	if lastEv["type"] != "chat_closed" || lastEv["user_type"] != "visitor" {
		t.Fatalf("last event %v, want chat_closed by visitor", lastEv)
	}
}

func TestAgentDetailsWhenAssigned(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.d.AgentConnected("a@x", true)
	sid := h.start("v2")
	evs := h.poll("v2", sid, "")
	var det map[string]any
	for _, e := range evs {
		if e["type"] == "agent_details" {
			det = e
		}
	}
	if det == nil {
		t.Fatalf("no agent_details in %v", evs)
	}
	agent := det["agent"].(map[string]any)
	if agent["name"] != "Ann" || agent["job_title"] != "Support" || agent["avatar"] != "cdn/ann.png" || det["user_type"] != "agent" {
		t.Fatalf("agent_details %v", det)
	}
}

func TestPollTimeoutClosesChat(t *testing.T) {
	h := newHarness(t, 150*time.Millisecond)
	sid := h.start("v3")
	sub := h.d.Bus().SubscribeDesk(16)
	defer sub.Close()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-sub.C():
			if n.Conv.State == model.StateClosed {
				evs := h.poll("v3", sid, "")
				last := evs[len(evs)-1]
				if last["type"] != "chat_closed" || last["user_type"] != "visitor" || !strings.Contains(last["reason"].(string), "no poll") {
					t.Fatalf("closing event %v", last)
				}
				return
			}
		case <-deadline:
			t.Fatal("idle chat was not closed")
		}
	}
}

func TestRestartClosesPreviousChat(t *testing.T) {
	h := newHarness(t, time.Hour)
	sid1 := h.start("v4")
	// Issue 16, Low 9: without the open chat's secured_session_id (none,
	// forged, or another chat's) a start does not end it.
	other := h.start("v5")
	for _, bad := range []string{"", strings.Repeat("0", 32), other} {
		code, m := h.call("POST", "/visitors/v4/chat/start", form, "licence_id="+lic+"&welcome_message=Hi&secured_session_id="+bad, nil)
		if code != 400 || m["error"] == nil {
			t.Fatalf("start with session %q: %d %v", bad, code, m)
		}
	}
	if evs := h.poll("v4", sid1, ""); evs[len(evs)-1]["type"] == "chat_closed" {
		t.Fatalf("chat ended by a start without its session: %v", evs)
	}
	sid2 := h.restart("v4", sid1)
	if sid1 == sid2 {
		t.Fatal("same session id twice")
	}
	evs := h.poll("v4", sid1, "")
	if evs[len(evs)-1]["type"] != "chat_closed" {
		t.Fatalf("first chat not closed: %v", evs)
	}
	code, _ := h.call("POST", "/visitors/v4/chat/send_message", form, "licence_id="+lic+"&secured_session_id="+sid2+"&message=hi", nil)
	if code != 200 {
		t.Fatalf("send on new chat: %d", code)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, time.Hour)
	sid := h.start("good")
	long := strings.Repeat("x", 1025)
	cases := []struct {
		name, method, path, ctype, body string
		hdr                             map[string]string
		code                            int
		errContains                     string
	}{
		{"no licence", "POST", "/visitors/a/chat/start", form, "welcome_message=hi", nil, 400, "Missing licence_id"},
		{"wrong licence", "POST", "/visitors/a/chat/start", form, "licence_id=9&welcome_message=hi", nil, 400, "Wrong licence_id"},
		{"license spelling accepted but wrong", "POST", "/visitors/a/chat/start", form, "license_id=9&welcome_message=hi", nil, 400, "Wrong licence_id"},
		{"no welcome", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic, nil, 400, "welcome_message"},
		{"welcome too long", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic + "&welcome_message=" + long, nil, 400, "1024"},
		{"bad group", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic + "&welcome_message=hi&group=x", nil, 400, "group"},
		{"unknown group", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic + "&welcome_message=hi&group=99", nil, 400, "Unknown group"},
		{"malformed JSON", "POST", "/visitors/a/chat/start", "application/json", `{"licence_id":`, nil, 400, "malformed JSON"},
		{"JSON array", "POST", "/visitors/a/chat/start", "application/json", `[1,2]`, nil, 400, "malformed JSON"},
		{"JSON nested value", "POST", "/visitors/a/chat/start", "application/json", `{"licence_id":{"a":1}}`, nil, 400, "string or a number"},
		{"malformed form", "POST", "/visitors/a/chat/start", form, "licence_id=%zz", nil, 400, "malformed form"},
		{"wrong api version", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic + "&welcome_message=hi", map[string]string{"X-API-Version": "3"}, 400, "X-API-Version"},
		{"body too large", "POST", "/visitors/a/chat/start", form, "licence_id=" + lic + "&welcome_message=" + strings.Repeat("y", 5000), nil, 413, "too large"},
		{"visitor id too long", "POST", "/visitors/" + strings.Repeat("v", 1025) + "/chat/start", form, "licence_id=" + lic + "&welcome_message=hi", nil, 400, "visitor_id"},
		{"unknown session", "GET", "/visitors/good/chat/get_pending_messages?licence_id=" + lic + "&secured_session_id=nope", "", "", nil, 404, "Chat not found"},
		{"missing session", "GET", "/visitors/good/chat/get_pending_messages?licence_id=" + lic, "", "", nil, 400, "secured_session_id"},
		{"other visitor's session", "GET", "/visitors/evil/chat/get_pending_messages?licence_id=" + lic + "&secured_session_id=" + sid, "", "", nil, 404, "Chat not found"},
		{"bad cursor", "GET", "/visitors/good/chat/get_pending_messages?licence_id=" + lic + "&secured_session_id=" + sid + "&last_message_id=-1", "", "", nil, 400, "last_message_id"},
		{"missing message", "POST", "/visitors/good/chat/send_message", form, "licence_id=" + lic + "&secured_session_id=" + sid, nil, 400, "Missing message"},
		{"message too long", "POST", "/visitors/good/chat/send_message", form, "licence_id=" + lic + "&secured_session_id=" + sid + "&message=" + strings.Repeat("m", 101), nil, 400, "too long"},
		{"blank message", "POST", "/visitors/good/chat/send_message", form, "licence_id=" + lic + "&secured_session_id=" + sid + "&message=%20%20", nil, 400, "empty message"},
		{"send to other visitor's session", "POST", "/visitors/evil/chat/send_message", form, "licence_id=" + lic + "&secured_session_id=" + sid + "&message=hi", nil, 404, "Chat not found"},
		{"close other visitor's session", "POST", "/visitors/evil/chat/close", form, "licence_id=" + lic + "&secured_session_id=" + sid, nil, 404, "Chat not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, m := h.call(tc.method, tc.path, tc.ctype, tc.body, tc.hdr)
			msg, _ := m["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.errContains) {
				t.Fatalf("got %d %v, want %d with error containing %q", code, m, tc.code, tc.errContains)
			}
		})
	}
	// Nothing of the above touched the good chat.
	evs := h.poll("good", sid, "")
	if len(evs) != 1 || evs[0]["text"] != "Hi" {
		t.Fatalf("good chat changed: %v", evs)
	}
}

func TestJSONP(t *testing.T) {
	h := newHarness(t, time.Hour)
	sid := h.start("jp")
	resp, err := http.Get(h.srv.URL + "/visitors/jp/chat/get_pending_messages?licence_id=" + lic + "&secured_session_id=" + sid + "&callback=cb_1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(string(b), "cb_1({") || !strings.HasSuffix(string(b), ");") {
		t.Fatalf("JSONP body %q", b)
	}
}

// TestFormsAndAnnotationsAsText: v2 has no form event; a filled form shows
// as a text message of its answers, an annotation as an agent message,
// and a custom event not at all.
func TestFormsAndAnnotationsAsText(t *testing.T) {
	h := newHarness(t, time.Hour)
	sid := h.start("forms")
	conv, err := h.d.Store().Resolve(context.Background(), store.MapKey{System: System, Tenant: lic, Kind: kindSession, Foreign: sid})
	if err != nil {
		t.Fatal(err)
	}
	vid, _ := h.d.Store().Resolve(context.Background(), store.MapKey{System: System, Tenant: lic, Kind: kindVisitor, Foreign: "forms"})
	author := model.Author{Kind: model.AuthorVisitor, ID: vid}
	drafts := []desk.Draft{
		{Kind: model.KindForm, Form: &model.Form{Type: "prechat", Fields: []model.FormField{
			{Label: "Name", Answer: json.RawMessage(`"Vic"`)}, {Label: "Topic", Answer: json.RawMessage(`{"label":"Billing"}`)}}}},
		{Kind: model.KindCustom, Custom: json.RawMessage(`{"x":1}`)},
	}
	for _, dr := range drafts {
		if _, _, err := h.d.Post(context.Background(), desk.PostRequest{Conv: model.ConvID(conv), Author: author, Draft: dr}); err != nil {
			t.Fatal(err)
		}
	}
	evs := h.poll("forms", sid, "2")
	if len(evs) != 1 || evs[0]["text"] != "Name: Vic\nTopic: Billing" || evs[0]["user_type"] != "visitor" {
		t.Fatalf("form as v2 events: %v", evs)
	}
}

func TestBannedVisitor(t *testing.T) {
	h := newHarness(t, time.Second)
	sid := h.start("vis-b")
	ctx := context.Background()
	ids, err := h.d.Store().Resolve(ctx, store.MapKey{System: System, Tenant: lic, Kind: kindVisitor, Foreign: "vis-b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.Ban(ctx, model.VisitorID(ids), 1, model.System, ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, body string
		code             int
		want             map[string]any
	}{
		{"send_message", "/visitors/vis-b/chat/send_message", "licence_id=" + lic + "&secured_session_id=" + sid + "&message=x", 403, nil},
		{"start", "/visitors/vis-b/chat/start", "licence_id=" + lic + "&welcome_message=Hi", 200,
			map[string]any{"banned": true, "secured_session_id": ""}},
		{"other visitor", "/visitors/vis-c/chat/start", "licence_id=" + lic + "&welcome_message=Hi", 200, nil},
	}
	for _, tc := range tests {
		code, m := h.call("POST", tc.path, form, tc.body, nil)
		if code != tc.code {
			t.Fatalf("%s: %d %v", tc.name, code, m)
		}
		if tc.want != nil && !reflect.DeepEqual(m, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, m, tc.want)
		}
	}
	// The banned visitor's chat was left as it was (not closed by the
	// refused start).
	if conv, ok, err := h.d.OpenConversation(ctx, model.VisitorID(ids)); err != nil || !ok || !conv.Active() {
		t.Fatalf("open conversation after refused start: %v %v", ok, err)
	}
}

// TestRememberedSessionNeverWidens: a session remembered from an earlier
// request opens its chat only for the visitor id it was found with, and
// no longer once the chat has moved to another visitor.
func TestRememberedSessionNeverWidens(t *testing.T) {
	h := newHarness(t, time.Hour)
	// w2's chat first and closed: a chat may only move to a visitor
	// whose conversations are older.
	sid2 := h.start("w2")
	if code, m := h.call("POST", "/visitors/w2/chat/close", form, "licence_id="+lic+"&secured_session_id="+sid2, nil); code != 200 {
		t.Fatalf("close: %d %v", code, m)
	}
	sid := h.start("w1")
	if evs := h.poll("w1", sid, ""); len(evs) == 0 {
		t.Fatal("no welcome")
	}
	path := "/visitors/%s/chat/get_pending_messages?licence_id=" + lic + "&secured_session_id=" + sid
	if code, m := h.call("GET", strings.Replace(path, "%s", "w2", 1), "", "", nil); code != 404 {
		t.Fatalf("another visitor id with a remembered session: %d %v", code, m)
	}
	ctx := context.Background()
	st := h.d.Store()
	convID, err := st.Resolve(ctx, store.MapKey{System: System, Tenant: lic, Kind: kindSession, Foreign: sid})
	if err != nil {
		t.Fatal(err)
	}
	conv, err := st.Conversation(ctx, model.ConvID(convID))
	if err != nil {
		t.Fatal(err)
	}
	to, err := st.Resolve(ctx, store.MapKey{System: System, Tenant: lic, Kind: kindVisitor, Foreign: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.d.ChangeVisitor(ctx, conv.ID, conv.Visitor, model.VisitorID(to), model.Author{Kind: model.AuthorSystem}); err != nil {
		t.Fatal(err)
	}
	if code, m := h.call("GET", strings.Replace(path, "%s", "w1", 1), "", "", nil); code != 404 {
		t.Fatalf("the chat moved to w2, yet w1's remembered session opens it: %d %v", code, m)
	}
	if code, m := h.call("GET", strings.Replace(path, "%s", "w2", 1), "", "", nil); code != 200 {
		t.Fatalf("the chat's new visitor: %d %v", code, m)
	}
}
