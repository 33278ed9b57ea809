package rtmconn

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/wsconn"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// goid is the calling goroutine's number, from its stack header.
func goid() uint64 {
	var buf [64]byte
	b := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	n, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return n
}

// deep uses about n bytes of stack.
//
//go:noinline
func deep(n int) byte {
	var pad [512]byte
	pad[n%512] = byte(n)
	if n <= 512 {
		return pad[0]
	}
	return deep(n-512) + pad[n%512]
}

// stackClient logs in on its first frame and records, per frame, the
// goroutine that served it; serving takes a deep stack, as a login
// (JSON, the desk, the store) does.
type stackClient struct {
	send     func([]byte) error
	loggedIn atomic.Bool
	mu       sync.Mutex
	servers  []uint64
}

func (c *stackClient) ID() string { return "test" }
func (c *stackClient) Serve(_ context.Context, frame []byte) error {
	deep(64 << 10)
	c.mu.Lock()
	c.servers = append(c.servers, goid())
	c.mu.Unlock()
	c.loggedIn.Store(true)
	return c.send(frame)
}
func (c *stackClient) LoggedIn() bool                           { return c.loggedIn.Load() }
func (c *stackClient) Started() (func(context.Context), func()) { return nil, nil }
func (c *stackClient) Logout()                                  {}

// stackServer serves a registry of stackClients on a loopback test server
// until the test ends. It returns the websocket URL and a snapshot of the
// clients made so far.
func stackServer(t *testing.T) (string, func() []*stackClient) {
	t.Helper()
	reg := NewSessions("test", Kind{Name: "test", Disconnected: "bye", Shutdown: "down", LoginTimeout: time.Minute},
		zerolog.Nop(), wsconn.Options{}, nil)
	var clients []*stackClient
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.Serve(w, r, "3.5", func(send func([]byte) error, _ func(string)) Client {
			c := &stackClient{send: send}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
			return c
		}, nil)
	}))
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- reg.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	t.Cleanup(srv.Close) // runs first: the server stops before the registry
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() []*stackClient {
		mu.Lock()
		defer mu.Unlock()
		return append([]*stackClient(nil), clients...)
	}
}

// TestRequestsLeaveTheReader: requests are served on a goroutine other
// than the socket's reader, so that an idle connection's reader keeps
// the small stack a blocked read needs instead of the deepest request's;
// answers still come one at a time, in order.
func TestRequestsLeaveTheReader(t *testing.T) {
	url, clientsOf := stackServer(t)

	const sessions = 50
	var conns []*websocket.Conn
	for range sessions {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 3 {
			want := "frame " + strconv.Itoa(i)
			if err := conn.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
				t.Fatal(err)
			}
			if _, got, err := conn.ReadMessage(); err != nil || string(got) != want {
				t.Fatalf("answer %q, %v; want %q", got, err, want)
			}
		}
		conns = append(conns, conn)
	}
	// Every reader is now blocked in a read. Their goroutines are the
	// ones whose stacks hold rtmconn's Run.
	readers := map[uint64]bool{}
	buf := make([]byte, 4<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "rtmconn.(*Session).Run(") && strings.Contains(g, "wsconn.(*Conn).Read(") {
			n, _ := strconv.ParseUint(strings.Fields(g)[1], 10, 64)
			readers[n] = true
		}
	}
	if len(readers) != sessions {
		t.Fatalf("%d readers blocked in a read, want %d", len(readers), sessions)
	}
	for _, c := range clientsOf() {
		c.mu.Lock()
		for _, g := range c.servers {
			if readers[g] {
				t.Fatalf("a request was served on its socket's reader (goroutine %d)", g)
			}
		}
		c.mu.Unlock()
	}
}

// pushClient is a stackClient whose pushes come from one hub
// subscription; handle records the goroutine that handled each.
type pushClient struct {
	stackClient
	sub     *hub.Sub
	handled chan uint64
}

func (c *pushClient) Pushes() (*hub.Sub, func(context.Context, *hub.Notice), func(error)) {
	return c.sub, func(context.Context, *hub.Notice) {
		deep(16 << 10) // rendering a push runs deep
		c.handled <- goid()
	}, func(error) {}
}

// TestPushesDrainOnThePool: the pushes of a registry's sessions are
// drained by its pool's lingering goroutines, not by a fresh goroutine
// per burst (whose stack grew again on every push): notices published one
// at a time to many sessions are handled by a handful of goroutines.
func TestPushesDrainOnThePool(t *testing.T) {
	bus := hub.NewBus()
	reg := NewSessions("test", Kind{Name: "test", Disconnected: "bye", Shutdown: "down", LoginTimeout: time.Minute},
		zerolog.Nop(), wsconn.Options{}, nil)
	handled := make(chan uint64, 1)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.Serve(w, r, "3.5", func(send func([]byte) error, _ func(string)) Client {
			id := model.ConvID("c" + strconv.FormatInt(n.Add(1), 10))
			return &pushClient{stackClient: stackClient{send: send}, sub: bus.SubscribeConv(id, 8), handled: handled}
		}, nil)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- reg.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	const sessions, rounds = 10, 5
	for range sessions {
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.WriteMessage(websocket.TextMessage, []byte("login")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	goroutines := map[uint64]bool{}
	for r := range rounds {
		for i := 1; i <= sessions; i++ {
			id := model.ConvID("c" + strconv.Itoa(i))
			bus.Publish(hub.Notice{Conv: model.Conversation{ID: id}, Events: []model.Event{{Conv: id, Seq: uint64(r + 1)}}})
			select {
			case g := <-handled:
				goroutines[g] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("notice %d of session %d not handled", r+1, i)
			}
		}
	}
	// One notice at a time: the goroutine that handled the last is idle
	// in the pool when the next is published (a fresh goroutine per drain
	// gives sessions*rounds of them).
	if len(goroutines) > 3 {
		t.Fatalf("%d notices were handled by %d goroutines, want a few pooled ones", sessions*rounds, len(goroutines))
	}
}

// TestRequestsServeOnThePool: after login, the requests of a registry's
// sessions run on its pool's lingering goroutines, shared by every
// session: requests sent one at a time, round after round, to many
// sessions are served by a handful of goroutines, not one per session
// (whose stack the collector halved between two of its requests) nor
// one per request.
func TestRequestsServeOnThePool(t *testing.T) {
	url, clientsOf := stackServer(t)

	const sessions, rounds = 10, 5
	conns := make([]*websocket.Conn, sessions)
	roundTrip := func(conn *websocket.Conn, want string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := conn.ReadMessage(); err != nil || string(got) != want {
			t.Fatalf("answer %q, %v; want %q", got, err, want)
		}
	}
	for i := range conns {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
		roundTrip(conn, "login")
	}
	for r := range rounds {
		for _, conn := range conns {
			roundTrip(conn, "frame "+strconv.Itoa(r))
		}
	}
	servers := map[uint64]bool{}
	for _, c := range clientsOf() {
		c.mu.Lock()
		for _, g := range c.servers[1:] { // the login runs apart
			servers[g] = true
		}
		c.mu.Unlock()
	}
	if len(servers) > 3 {
		t.Fatalf("%d requests of %d sessions were served by %d goroutines, want a few pooled ones", sessions*rounds, sessions, len(servers))
	}
}
