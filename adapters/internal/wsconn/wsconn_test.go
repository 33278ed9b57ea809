package wsconn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pair starts an httptest server on 127.0.0.1 whose handler wraps the
// upgraded socket with opts and hands it to the test, and dials it. Both
// ends and the server are closed when the test ends.
func pair(t *testing.T, opts Options) (*Conn, *websocket.Conn) {
	t.Helper()
	got := make(chan *Conn, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := Upgrade(&websocket.Upgrader{}, w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		c := New(ws, opts)
		got <- c
		<-release
		c.Close(ReasonNormal)
		_ = c.Wait(context.Background())
	}))
	cli, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := <-got
	t.Cleanup(func() {
		cli.Close()
		close(release)
		srv.Close()
	})
	return c, cli
}

func TestSendAndRead(t *testing.T) {
	c, cli := pair(t, Options{})
	if err := c.Send([]byte(`{"hello":1}`)); err != nil {
		t.Fatalf("send: %v", err)
	}
	_, msg, err := cli.ReadMessage()
	if err != nil || string(msg) != `{"hello":1}` {
		t.Fatalf("client read = %q, %v", msg, err)
	}
	if err := cli.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	msg, err = c.Read(context.Background())
	if err != nil || string(msg) != "ping" {
		t.Fatalf("server read = %q, %v", msg, err)
	}
}

// A client that never reads fills the socket buffers, then the queue; the
// session must be cut off with ReasonSlow rather than buffer more.
func TestSlowConsumerCutOff(t *testing.T) {
	c, _ := pair(t, Options{SendQueue: 4, WriteTimeout: time.Second})
	big := []byte(strings.Repeat("x", 256<<10))
	var err error
	for err == nil {
		err = c.Send(big)
	}
	if !errors.Is(err, ErrSlow) && !errors.Is(err, ErrClosed) {
		t.Fatalf("send error = %v, want ErrSlow", err)
	}
	<-c.Done()
	if c.Err() != ReasonSlow {
		t.Fatalf("Err = %v, want ReasonSlow", c.Err())
	}
	if err := c.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after cut-off = %v, want ErrClosed", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	c, cli := pair(t, Options{})
	if err := c.Send([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Close(ReasonGoingAway)
		}()
	}
	wg.Wait()
	c.Close(ReasonNormal) // later reasons do not replace the first
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Err() != ReasonGoingAway {
		t.Fatalf("Err = %v, want ReasonGoingAway", c.Err())
	}
	// The queued frame was flushed before the close frame.
	_, msg, err := cli.ReadMessage()
	if err != nil || string(msg) != "last words" {
		t.Fatalf("client read = %q, %v", msg, err)
	}
	_, _, err = cli.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("client close = %v, want 1001", err)
	}
	if _, err := c.Read(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close = %v, want ErrClosed", err)
	}
}

// The server pings; the client's (gorilla default) handler answers with
// pongs, which keep the read deadline moving although the client sends no
// data for many read timeouts.
func TestPingKeepsAlive(t *testing.T) {
	// The timeout leaves room for a loaded CI machine (a 150 ms one
	// failed there when a pong waited for the scheduler); the silence
	// below still outlasts it.
	c, cli := pair(t, Options{ReadTimeout: time.Second, PingInterval: 50 * time.Millisecond})
	var pings atomic.Int32
	cli.SetPingHandler(func(data string) error {
		pings.Add(1)
		return cli.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	clientDone := make(chan struct{})
	go func() { // the client must read to process control frames
		defer close(clientDone)
		for {
			if _, _, err := cli.ReadMessage(); err != nil {
				return
			}
		}
	}()
	readc := make(chan error, 1)
	var msg []byte
	go func() {
		var err error
		msg, err = c.Read(context.Background())
		readc <- err
	}()
	// Stay silent until several pings went by, i.e. well past one
	// ReadTimeout, then speak.
	for pings.Load() < 30 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cli.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if err := <-readc; err != nil || string(msg) != "still here" {
		t.Fatalf("read = %q, %v", msg, err)
	}
	c.Close(ReasonNormal)
	<-clientDone
}

// A client that does not answer pings is timed out.
func TestSilentPeerTimesOut(t *testing.T) {
	c, cli := pair(t, Options{ReadTimeout: 100 * time.Millisecond, PingInterval: 30 * time.Millisecond})
	cli.SetPingHandler(func(string) error { return nil }) // swallow pings
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for {
			if _, _, err := cli.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if _, err := c.Read(context.Background()); !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("read = %v, want ErrReadTimeout", err)
	}
	// Writes still work after a read timeout: a goodbye can be sent.
	if err := c.Send([]byte("bye")); err != nil {
		t.Fatalf("send after timeout: %v", err)
	}
	c.Close(ReasonTimeout)
	_ = c.Wait(context.Background())
	<-clientDone // the close frame ends the client's read loop
}

func TestReadLimit(t *testing.T) {
	c, cli := pair(t, Options{ReadLimit: 1024})
	if err := cli.WriteMessage(websocket.TextMessage, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(context.Background()); !errors.Is(err, ErrTooBig) {
		t.Fatalf("read = %v, want ErrTooBig", err)
	}
	c.Close(ReasonTooBig)
	_, _, err := cli.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("client close = %v, want 1009", err)
	}
}

func TestReadHonoursContext(t *testing.T) {
	c, _ := pair(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(ctx)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("read = %v, want context.Canceled", err)
	}
	<-c.Done()
	if c.Err() != ReasonGoingAway {
		t.Fatalf("Err = %v", c.Err())
	}
}

// TestQueueCostsNothingUpFront: a socket's send queue grows with what
// waits in it, so that a held, idle socket does not pay for its bound (a
// channel of SendQueue slots cost every socket 24 bytes a slot).
func TestQueueCostsNothingUpFront(t *testing.T) {
	const bound = 1 << 16 // 1.5 MiB as a channel of slices
	got := make(chan uint64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := Upgrade(&websocket.Upgrader{}, w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := New(ws, Options{SendQueue: bound})
		runtime.ReadMemStats(&after)
		got <- after.TotalAlloc - before.TotalAlloc
		c.Close(ReasonNormal)
		_ = c.Wait(context.Background())
	}))
	defer srv.Close()
	cli, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer cli.Close()
	if n := <-got; n > 64<<10 {
		t.Fatalf("New allocated %d bytes with SendQueue %d; the queue should grow on demand", n, bound)
	}
}

// TestQueueOrderAndBound drives the queue directly: frames leave in the
// order queued across growth and the reuse of written slots, and a full
// queue refuses the next frame.
func TestQueueOrderAndBound(t *testing.T) {
	tests := []struct {
		name  string
		bound int
		ops   string // p: push the next frame, o: pop and check it
	}{
		{"fill then drain", 4, "ppppoooo"},
		{"interleaved", 3, "pppopopooo"},
		{"reuse written slots", 4, "ppppooppoooo"},
		{"refuse when full", 2, "pp!oopo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{opts: Options{SendQueue: tt.bound}}
			next, want := 0, 0
			for i, op := range tt.ops {
				switch op {
				case 'p':
					c.wmu.Lock()
					ok := c.pushLocked(fmt.Appendf(nil, "%d", next))
					c.wmu.Unlock()
					if !ok {
						t.Fatalf("op %d: push %d refused below the bound", i, next)
					}
					next++
				case '!':
					c.wmu.Lock()
					ok := c.pushLocked([]byte("over"))
					c.wmu.Unlock()
					if ok {
						t.Fatalf("op %d: push accepted over the bound %d", i, tt.bound)
					}
				case 'o':
					msg, ok := c.pop()
					if !ok || string(msg) != fmt.Sprint(want) {
						t.Fatalf("op %d: pop = %q, %v; want %d", i, msg, ok, want)
					}
					want++
				}
				if q := c.queued(); q > tt.bound || cap(c.queue) > 2*tt.bound {
					t.Fatalf("op %d: %d queued, capacity %d, bound %d", i, q, cap(c.queue), tt.bound)
				}
			}
			if _, ok := c.pop(); ok {
				t.Fatal("queue not empty at the end")
			}
		})
	}
}
