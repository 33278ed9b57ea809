package agentrtm

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
	return newCoreAt(t, filepath.Join(t.TempDir(), "chatgate.db"), maxText)
}

// newCoreAt is newCore on the data file path: a second core on the same
// path, after the first one's test ended, is a restart.
func newCoreAt(t testing.TB, path string, maxText int) *core {
	t.Helper()
	return newCoreWith(t, path, maxText, testAgents())
}

// newCoreWith is newCoreAt with other agents.
func newCoreWith(t testing.TB, path string, maxText int, agents []model.Agent) *core {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	d := desk.New(desk.Options{
		Store: st, Router: routing.New(agents, true), Bus: hub.NewBus(), Actors: hub.NewActors(256),
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
	conns  sync.WaitGroup
	counts rtmtest.Counter
}

func newHarness(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, newCore(t, 200), mod)
}

// newHarnessOn serves a surface over an existing core.
func newHarnessOn(t testing.TB, co *core, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{core: co}
	cfg := Config{
		LicenseID: "1520", OrganizationID: "org-1",
		Authenticate:  func(tok string) (model.AgentID, bool) { id, ok := testTokens[tok]; return id, ok },
		MaxFrame:      8 << 10,
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

// aliceServesTom logs alice in on the agent RTM and starts Tom's chat,
// which she serves; her incoming_chat push is read.
func (h *harness) aliceServesTom(t *testing.T) (*rtm, model.Visitor, model.Conversation) {
	t.Helper()
	a := h.dial(t, "/v3.5/agent/rtm/ws")
	a.login("tok-alice")
	tom, conv := h.startChat(t, "Tom", "")
	a.Push("incoming_chat")
	return a, tom, conv
}

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
	f := c.Call("login", map[string]any{"token": "Bearer " + token})
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

// errorBody is a failed response's payload (§2.9).
type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}
