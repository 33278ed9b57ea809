package agentrtm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

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
	st, err := bolt.Open(path, bolt.Options{})
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
	conns  sync.WaitGroup
	counts struct {
		sync.Mutex
		n int
	}
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
		Authenticate: func(tok string) (model.AgentID, bool) { id, ok := testTokens[tok]; return id, ok },
		MaxFrame:     8 << 10,
		OnConnections: func(d int) {
			h.counts.Lock()
			h.counts.n += d
			h.counts.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h.surf = New(h.d, cfg, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.surf.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-runDone; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	r := gin.New()
	h.surf.Mount(r)
	h.srv = httptest.NewServer(r)
	// Cleanups run last-in first-out: the surface stops (closing every
	// session) before the server, then the desk and store (registered in
	// newCore) stop.
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.stop)
	return h
}

func (h *harness) connections() int {
	h.counts.Lock()
	defer h.counts.Unlock()
	return h.counts.n
}

// frame is any server frame.
type frame struct {
	RequestID *string         `json:"request_id"`
	Action    string          `json:"action"`
	Type      string          `json:"type"`
	Success   bool            `json:"success"`
	Version   string          `json:"version"`
	Payload   json.RawMessage `json:"payload"`
}

func (f frame) rid() string {
	if f.RequestID == nil {
		return ""
	}
	return *f.RequestID
}

type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func (f frame) errType() string {
	var b errorBody
	_ = json.Unmarshal(f.Payload, &b)
	return b.Error.Type
}

// rtm is a test client: it reads frames in the background and lets the
// test wait for a response by request_id or for a push by action.
type rtm struct {
	t       *testing.T
	ws      *websocket.Conn
	frames  chan frame
	closed  chan struct{}
	closeMu sync.Mutex
	closeEr error
	backlog []frame
	seq     int
}

// waitLimit only guards against a hung test; no assertion depends on it.
const waitLimit = 10 * time.Second

func (h *harness) dial(t *testing.T, path string) *rtm {
	t.Helper()
	return h.dialWith(t, path, nil)
}

// dialWith lets the test adjust the client socket (e.g. its ping handler)
// before the read loop starts.
func (h *harness) dialWith(t *testing.T, path string, setup func(*websocket.Conn)) *rtm {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.srv.URL, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	if setup != nil {
		setup(ws)
	}
	c := &rtm{t: t, ws: ws, frames: make(chan frame, 1024), closed: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() {
		ws.Close()
		<-c.closed
	})
	return c
}

func (c *rtm) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.closeMu.Lock()
			c.closeEr = err
			c.closeMu.Unlock()
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("server sent invalid JSON %q: %v", b, err)
			continue
		}
		c.frames <- f
	}
}

// closeErr waits for the server to close the socket and returns why.
func (c *rtm) closeErr() error {
	select {
	case <-c.closed:
	case <-time.After(waitLimit):
		c.t.Fatalf("socket not closed")
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeEr
}

func (c *rtm) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send sends a request and returns its request_id.
func (c *rtm) send(action string, payload any) string {
	c.t.Helper()
	c.seq++
	rid := fmt.Sprintf("req-%d", c.seq)
	m := map[string]any{"request_id": rid, "action": action}
	if payload != nil {
		m["payload"] = payload
	}
	b, _ := json.Marshal(m)
	c.sendRaw(b)
	return rid
}

// recv returns the next frame from the socket. Frames the server sent
// before closing are all delivered before the close is reported.
func (c *rtm) recv() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("socket closed while waiting: %v", c.closeErr())
	case <-time.After(waitLimit):
		c.t.Fatalf("no frame")
	}
	return frame{}
}

// await returns the first frame matching ok, keeping the others (in
// order) for later calls.
func (c *rtm) await(ok func(frame) bool) frame {
	c.t.Helper()
	for i, f := range c.backlog {
		if ok(f) {
			c.backlog = append(c.backlog[:i:i], c.backlog[i+1:]...)
			return f
		}
	}
	for {
		f := c.recv()
		if ok(f) {
			return f
		}
		c.backlog = append(c.backlog, f)
	}
}

func (c *rtm) response(rid string) frame {
	c.t.Helper()
	return c.await(func(f frame) bool { return f.Type == "response" && f.rid() == rid })
}

func (c *rtm) push(action string) frame {
	c.t.Helper()
	return c.await(func(f frame) bool { return f.Type == "push" && f.Action == action })
}

// call sends a request and waits for its response.
func (c *rtm) call(action string, payload any) frame {
	c.t.Helper()
	return c.response(c.send(action, payload))
}

func (c *rtm) login(token string) LoginResponse {
	c.t.Helper()
	f := c.call("login", map[string]any{"token": "Bearer " + token})
	if !f.Success {
		c.t.Fatalf("login failed: %s", f.Payload)
	}
	var out LoginResponse
	mustUnmarshal(c.t, f.Payload, &out)
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
