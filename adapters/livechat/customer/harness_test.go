package customer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/internal/rtmtest"
	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
	"chatgate/store/bolt"
	"chatgate/store/files"
)

const (
	alice = model.AgentID("alice@example.com")
	bob   = model.AgentID("bob@example.com")
	carol = model.AgentID("carol@example.com") // serves only "sales"
)

func testAgents() []model.Agent {
	return []model.Agent{
		{ID: alice, Name: "Alice", JobTitle: "Support"},
		{ID: bob, Name: "Bob"},
		{ID: carol, Name: "Carol", Departments: []model.DeptID{"sales"}},
	}
}

var testTokens = map[string]model.AgentID{"tok-alice": alice, "tok-bob": bob, "tok-carol": carol}

// core is a real desk on a real bbolt store, running until the test ends.
type core struct {
	d  *desk.Desk
	st store.Store
}

func newCore(t testing.TB, maxText int) *core {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "chatgate.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	d := desk.New(desk.Options{
		Store: st, Router: routing.New(testAgents(), true), Bus: hub.NewBus(), Actors: hub.NewActors(256),
		Limits: desk.Limits{MaxText: maxText}, Logger: zerolog.Nop(),
		Departs: []model.Department{{ID: "sales", Name: "Sales"}, {ID: "support", Name: "Support"}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Load(ctx); err != nil {
		t.Fatalf("load: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &core{d: d, st: st}
}

// startChat creates a visitor (keyed by name) and starts a conversation
// with one visitor message.
func (c *core) startChat(t testing.TB, name string, dept model.DeptID) (model.Visitor, model.Conversation) {
	t.Helper()
	ctx := context.Background()
	v, err := c.d.EnsureVisitor(ctx, store.MapKey{System: "test", Tenant: "t", Kind: "visitor", Foreign: name},
		model.Visitor{Name: name, Email: strings.ToLower(name) + "@example.org"})
	if err != nil {
		t.Fatalf("ensure visitor: %v", err)
	}
	conv, _, err := c.d.Start(ctx, desk.StartRequest{
		Visitor: v.ID, Department: dept, Origin: "test",
		Author: model.Author{Kind: model.AuthorVisitor, ID: string(v.ID), Name: name},
		Events: []desk.Draft{{Kind: model.KindMessage, Text: "hello from " + name}},
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return v, conv
}

// harness serves a Surface over an httptest server on 127.0.0.1.
type harness struct {
	*core
	surf   *Surface
	srv    *httptest.Server
	stop   func() // stops the surface (idempotent); waits for Run
	clock  *clock
	conns  sync.WaitGroup
	counts rtmtest.Counter
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{core: newCore(t, 200)}
	fs, err := files.Open(filepath.Join(t.TempDir(), "files"), 1<<10)
	if err != nil {
		t.Fatalf("files: %v", err)
	}
	h.clock = newClock(h.d.Now())
	cfg := Config{
		LicenseID: "1520", OrganizationID: "org-1", Files: fs,
		AgentToken: func(tok string) (model.AgentID, bool) { id, ok := testTokens[tok]; return id, ok },
		MaxFrame:   8 << 10, Now: h.clock.now,
		OnConnections: h.counts.Add,
	}
	if mod != nil {
		mod(&cfg)
	}
	h.surf = New(h.d, cfg, zerolog.Nop())
	h.srv, h.stop = rtmtest.Serve(t, h.surf)
	return h
}

func (h *harness) connections() int { return h.counts.N() }

// frame is any server frame; rtm a test socket (adapters/livechat/internal/rtmtest).
type frame = rtmtest.Frame

type rtm struct{ *rtmtest.Client }

const waitLimit = rtmtest.WaitLimit

func (h *harness) dial(t *testing.T, path string) *rtm {
	t.Helper()
	return h.dialWith(t, path, nil)
}

// dialWith lets the test adjust the client socket (e.g. its ping handler)
// before the read loop starts.
func (h *harness) dialWith(t *testing.T, path string, setup func(*websocket.Conn)) *rtm {
	t.Helper()
	return &rtm{rtmtest.Dial(t, "ws"+strings.TrimPrefix(h.srv.URL, "http")+path, setup)}
}

func (c *rtm) login(token string) LoginResponse {
	c.T.Helper()
	return c.loginWith(map[string]any{"token": "Bearer " + token})
}

func (c *rtm) loginWith(p map[string]any) LoginResponse {
	c.T.Helper()
	f := c.Call("login", p)
	if !f.Success {
		c.T.Fatalf("login failed: %s", f.Payload)
	}
	var out LoginResponse
	mustUnmarshal(c.T, f.Payload, &out)
	return out
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
}

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	m.Run()
}

// clock is a settable test clock for token expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// token issues a cookie-grant token for a new customer.
func (h *harness) token(t *testing.T) (string, model.VisitorID) {
	t.Helper()
	tok, id := h.tokenWith(t, nil)
	return tok, id
}

func (h *harness) tokenWith(t *testing.T, cookies []*http.Cookie) (string, model.VisitorID) {
	t.Helper()
	status, body, _ := h.post(t, "/v2/customer/token", "", `{"grant_type":"cookie","response_type":"token","client_id":"c","organization_id":"org-1"}`, cookies)
	if status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	var r TokenResponse
	mustUnmarshal(t, body, &r)
	return r.AccessToken, model.VisitorID(r.EntityID)
}

// post sends a JSON POST; bearer may be empty.
func (h *harness) post(t *testing.T, path, bearer, body string, cookies []*http.Cookie) (int, []byte, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp
}

const rtmPath = "/v3.5/customer/rtm/ws?organization_id=org-1"

// chatting is a customer (as customer returns it) whose chat, started
// with "hello", an online alice serves; its incoming_chat is read.
func (h *harness) chatting(t *testing.T) (*rtm, model.VisitorID, string) {
	t.Helper()
	h.d.AgentConnected(alice, true)
	c, me, tok := h.customer(t)
	if r := c.Call("start_chat", startPayload("hello")); !r.Success {
		t.Fatalf("start_chat: %s", r.Payload)
	}
	c.Push("incoming_chat")
	return c, me, tok
}

// customer dials and logs in a fresh customer.
func (h *harness) customer(t *testing.T) (*rtm, model.VisitorID, string) {
	t.Helper()
	tok, id := h.token(t)
	c := h.dial(t, rtmPath)
	c.login(tok)
	return c, id, tok
}

// errorBody is a failed response's payload (§2.9).
type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}
