package rocketchat

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// Agents of the DDP tests: amy serves every department, ben only "sales".
var ddpAgents = []model.Agent{
	{ID: "amy@x", Username: "amy", Name: "Amy"},
	{ID: "ben@x", Username: "ben", Name: "Ben", Departments: []model.DeptID{"sales"}},
}

const (
	ddpTestMaxText  = 300
	ddpTestMaxFrame = 4 << 10
	// ddpWait only guards against a hung test; no assertion depends on it.
	ddpWait = 10 * time.Second
)

// ddpEnv is a Surface on a real desk and bolt store, served over an
// httptest server on 127.0.0.1, with its Run loop going.
type ddpEnv struct {
	t     testing.TB
	d     *desk.Desk
	s     *Surface
	st    store.Store
	srv   *httptest.Server
	conns atomic.Int64
	// writes logs what the server writes to its sockets, one entry per
	// Write on the accepted connection (a write(2); see writeLogListener).
	writes writeLog
	stop   func() // stops the surface (idempotent), waiting for Run
}

// newDDPEnv builds the environment; mod may adjust the surface (timings)
// before it serves.
func newDDPEnv(t testing.TB, mod func(*Surface)) *ddpEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ddp.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	d := desk.New(desk.Options{Store: st, Router: routing.New(ddpAgents, true), Bus: hub.NewBus(),
		Actors: hub.NewActors(16), Limits: desk.Limits{MaxText: ddpTestMaxText}, Logger: zerolog.Nop(),
		Departs: []model.Department{{ID: "sales", Name: "Sales"}, {ID: "empty", Name: "Nobody"}}, Properties: testProperties(t, st)})
	env := &ddpEnv{t: t, d: d, st: st}
	env.s = New(d, Config{MaxFrame: ddpTestMaxFrame, OnConnections: func(n int) { env.conns.Add(int64(n)) },
		CustomFields: testCustomFields, RoomFieldNamespace: testFieldNS}, zerolog.Nop())
	if mod != nil {
		mod(env.s)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	env.s.Mount(e)
	env.srv = httptest.NewUnstartedServer(e)
	env.srv.Listener = &writeLogListener{Listener: env.srv.Listener, log: &env.writes}
	env.srv.Start()

	deskCtx, stopDesk := context.WithCancel(context.Background())
	deskDone := make(chan struct{})
	go func() { defer close(deskDone); _ = d.Run(deskCtx) }()
	surfCtx, stopSurf := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- env.s.Run(surfCtx) }()
	var once sync.Once
	env.stop = func() {
		once.Do(func() {
			stopSurf()
			if err := <-runErr; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	// Last in, first out: the surface stops (closing every session) before
	// the server, then the desk and the store.
	t.Cleanup(func() {
		stopDesk()
		<-deskDone
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	t.Cleanup(env.srv.Close)
	t.Cleanup(env.stop)
	return env
}

// visitor creates (or finds) the visitor of token.
func (e *ddpEnv) visitor(token, name string) model.Visitor {
	e.t.Helper()
	v, err := e.s.saveVisitor(context.Background(), visitorInput{token: token, name: name, hasName: name != ""})
	if err != nil {
		e.t.Fatalf("visitor %s: %v", token, err)
	}
	return v
}

// room returns the visitor's open room, started the way GET livechat/room
// starts it (an agent must be online).
func (e *ddpEnv) room(v model.Visitor) model.Conversation {
	e.t.Helper()
	c, _, err := e.s.openOrStartRoom(context.Background(), v, "", true)
	if err != nil {
		e.t.Fatalf("room: %v", err)
	}
	return c
}

// online connects an agent (routing takes it as accepting).
func (e *ddpEnv) online(id model.AgentID) { e.d.AgentConnected(id, true) }

// agentSays posts an agent message.
func (e *ddpEnv) agentSays(conv model.ConvID, agent model.AgentID, text string) model.Event {
	e.t.Helper()
	ev, _, err := e.d.Post(context.Background(), desk.PostRequest{Conv: conv,
		Author: model.Author{Kind: model.AuthorAgent, ID: string(agent)}, Draft: desk.Draft{Text: text}})
	if err != nil {
		e.t.Fatalf("agent post: %v", err)
	}
	return ev
}

func (e *ddpEnv) url(path string) string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + path }

// ddpFrame is one server frame, decoded as plain JSON (EJSON forms stay as
// {"$date": …} objects so that tests see the wire).
type ddpFrame struct {
	raw string
	m   map[string]any
}

func (f ddpFrame) msg() string { s, _ := f.m["msg"].(string); return s }
func (f ddpFrame) id() string  { s, _ := f.m["id"].(string); return s }
func (f ddpFrame) has(k string) bool {
	_, ok := f.m[k]
	return ok
}

// errCode is the `error` field of a frame's Meteor.Error.
func (f ddpFrame) errCode() any {
	e, _ := f.m["error"].(map[string]any)
	return e["error"]
}

// ddpClient is a raw DDP test client: it reads frames in the background
// and lets a test wait for the one it wants, keeping the others.
type ddpClient struct {
	t       *testing.T
	ws      *websocket.Conn
	frames  chan ddpFrame
	closed  chan struct{}
	mu      sync.Mutex
	closeEr error
	backlog []ddpFrame
	seq     int
	sockjs  bool
}

func (e *ddpEnv) dial(t *testing.T, path string) *ddpClient {
	t.Helper()
	return dialDDP(t, e.srv.URL, path)
}

// dialDDP connects a raw DDP client to the server at base (http://…).
func dialDDP(t *testing.T, base, path string) *ddpClient {
	t.Helper()
	return dialDDPHeader(t, base, path, nil)
}

// dialDDPHeader is dialDDP with h sent on the upgrade request.
func dialDDPHeader(t *testing.T, base, path string, h http.Header) *ddpClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+path, h)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &ddpClient{t: t, ws: ws, frames: make(chan ddpFrame, 4096), closed: make(chan struct{}),
		sockjs: strings.Contains(path, "/sockjs/") && path != "/sockjs/websocket"}
	go c.readLoop()
	t.Cleanup(func() {
		ws.Close()
		<-c.closed
	})
	return c
}

func (c *ddpClient) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.closeEr = err
			c.mu.Unlock()
			return
		}
		payloads := []string{string(b)}
		if c.sockjs {
			payloads = nil
			switch {
			case len(b) > 0 && b[0] == 'a':
				var list []string
				if err := json.Unmarshal(b[1:], &list); err != nil {
					c.t.Errorf("bad sockjs frame %q", b)
					continue
				}
				payloads = list
			default:
				c.frames <- ddpFrame{raw: string(b)} // "o", "h", "c[...]"
				continue
			}
		}
		for _, p := range payloads {
			var m map[string]any
			if err := json.Unmarshal([]byte(p), &m); err != nil {
				c.t.Errorf("server sent invalid JSON %q: %v", p, err)
				continue
			}
			c.frames <- ddpFrame{raw: p, m: m}
		}
	}
}

func (c *ddpClient) sendRaw(b string) {
	c.t.Helper()
	if c.sockjs {
		q, _ := json.Marshal([]string{b})
		b = string(q)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(b)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *ddpClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// recv returns the next frame; frames sent before a close are all
// delivered before the close is reported.
func (c *ddpClient) recv() ddpFrame {
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
	case <-time.After(ddpWait):
		c.t.Fatalf("no frame within %s", ddpWait)
	}
	return ddpFrame{}
}

// await returns the first frame matching ok, keeping the others in order.
func (c *ddpClient) await(ok func(ddpFrame) bool) ddpFrame {
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

func (c *ddpClient) awaitMsg(msg string) ddpFrame {
	c.t.Helper()
	return c.await(func(f ddpFrame) bool { return f.msg() == msg })
}

// closeErr waits for the server to close the socket and returns why.
func (c *ddpClient) closeErr() error {
	select {
	case <-c.closed:
	case <-time.After(ddpWait):
		c.t.Fatalf("socket not closed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeEr
}

// connect performs the widget's handshake and returns the session id.
func (c *ddpClient) connect() string {
	c.t.Helper()
	c.send(map[string]any{"msg": "connect", "version": "1", "support": []string{"1", "pre2", "pre1"}})
	return fmt.Sprint(c.awaitMsg("connected").m["session"])
}

func (c *ddpClient) nextID() string {
	c.seq++
	return fmt.Sprintf("ddp-%d", c.seq)
}

// call sends a method and returns its result frame (after checking that
// its `updated` came first).
func (c *ddpClient) call(method string, params ...any) ddpFrame {
	c.t.Helper()
	id := c.nextID()
	if params == nil {
		params = []any{}
	}
	c.send(map[string]any{"msg": "method", "method": method, "params": params, "id": id})
	upd := c.await(func(f ddpFrame) bool {
		return (f.msg() == "updated" && strings.Contains(f.raw, `"`+id+`"`)) || (f.msg() == "result" && f.id() == id)
	})
	if upd.msg() != "updated" {
		c.t.Fatalf("%s: result before updated: %s", method, upd.raw)
	}
	return c.await(func(f ddpFrame) bool { return f.msg() == "result" && f.id() == id })
}

// ok calls a method that must succeed and returns its result value (nil
// when absent).
func (c *ddpClient) ok(method string, params ...any) any {
	c.t.Helper()
	f := c.call(method, params...)
	if f.has("error") {
		c.t.Fatalf("%s failed: %s", method, f.raw)
	}
	return f.m["result"]
}

// fails calls a method that must fail with code and returns the frame.
func (c *ddpClient) fails(code any, method string, params ...any) ddpFrame {
	c.t.Helper()
	f := c.call(method, params...)
	if !f.has("error") {
		c.t.Fatalf("%s succeeded, want error %v: %s", method, code, f.raw)
	}
	got := f.errCode()
	if fmt.Sprint(got) != fmt.Sprint(code) {
		c.t.Fatalf("%s error %v, want %v: %s", method, got, code, f.raw)
	}
	e := f.m["error"].(map[string]any)
	if e["errorType"] != "Meteor.Error" || e["isClientSafe"] != true || e["message"] == "" {
		c.t.Fatalf("%s: not a Meteor.Error: %s", method, f.raw)
	}
	return f
}

// sub subscribes and returns the sub id and the answer (ready or nosub).
func (c *ddpClient) sub(name string, params ...any) (string, ddpFrame) {
	c.t.Helper()
	id := c.nextID()
	if params == nil {
		params = []any{}
	}
	c.send(map[string]any{"msg": "sub", "id": id, "name": name, "params": params})
	f := c.await(func(f ddpFrame) bool {
		if f.msg() == "nosub" && f.id() == id {
			return true
		}
		if f.msg() == "ready" {
			subs, _ := f.m["subs"].([]any)
			return len(subs) == 1 && subs[0] == id
		}
		return false
	})
	return id, f
}

// mustSub subscribes with the widget's params and requires ready.
func (c *ddpClient) mustSub(name, event, token string) string {
	c.t.Helper()
	id, f := c.sub(name, event, ddpWidgetOpts(token))
	if f.msg() != "ready" {
		c.t.Fatalf("sub %s %s: %s", name, event, f.raw)
	}
	return id
}

// ddpWidgetOpts are the sub options the widget (SDK alpha.42) sends.
func ddpWidgetOpts(token string) map[string]any {
	return map[string]any{"useCollection": false, "args": []any{map[string]any{"token": token, "visitorToken": token}}}
}

// changed waits for the next `changed` frame of a collection.
func (c *ddpClient) changed(collection string) ddpFrame {
	c.t.Helper()
	return c.await(func(f ddpFrame) bool { return f.msg() == "changed" && f.m["collection"] == collection })
}

// ddpStreamArgs returns a changed frame's eventName and args.
func ddpStreamArgs(t *testing.T, f ddpFrame) (string, []any) {
	t.Helper()
	fields, ok := f.m["fields"].(map[string]any)
	if !ok || f.m["id"] != "id" {
		t.Fatalf("not a stream frame: %s", f.raw)
	}
	ev, _ := fields["eventName"].(string)
	args, _ := fields["args"].([]any)
	return ev, args
}

// ddpEJSONDate reads {"$date": ms} from a plain-JSON-decoded value.
func ddpEJSONDate(t *testing.T, v any) time.Time {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("not an EJSON date: %#v", v)
	}
	ms, ok := m["$date"].(float64)
	if !ok || ms != float64(int64(ms)) {
		t.Fatalf("not an EJSON date: %#v", v)
	}
	return time.UnixMilli(int64(ms))
}

// ddpEventually polls cond (for state that changes after a socket closes).
func ddpEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ddpWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// writeLog records the server's socket writes, each one whole, so that a
// test can check which frames left in one write(2).
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
}

// containing returns the writes whose bytes hold sub.
func (l *writeLog) containing(sub string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, w := range l.writes {
		if strings.Contains(string(w), sub) {
			out = append(out, w)
		}
	}
	return out
}

// writeLogListener hands out connections whose every Write is logged:
// net/http and the websocket upgrade (wsconn.Upgrade's batchConn) write
// to the accepted net.Conn, so one Write is one write(2) on the socket.
type writeLogListener struct {
	net.Listener
	log *writeLog
}

func (l *writeLogListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeLogConn{Conn: c, log: l.log}, nil
}

type writeLogConn struct {
	net.Conn
	log *writeLog
}

func (c *writeLogConn) Write(p []byte) (int, error) {
	c.log.mu.Lock()
	c.log.writes = append(c.log.writes, append([]byte(nil), p...))
	c.log.mu.Unlock()
	return c.Conn.Write(p)
}
