// Package rtmtest is the LiveChat RTM test client the agent and customer
// surfaces' tests share: it reads frames in the background and lets a
// test wait for a response by request_id or for a push by action.
package rtmtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// WaitLimit only guards against a hung test; no assertion depends on it.
// Generous, because CI's 2 cores may be loaded many times over.
const WaitLimit = 2 * time.Minute

// Frame is any server frame.
type Frame struct {
	RequestID *string         `json:"request_id"`
	Action    string          `json:"action"`
	Type      string          `json:"type"`
	Success   bool            `json:"success"`
	Version   string          `json:"version"`
	Payload   json.RawMessage `json:"payload"`
}

// RID is the frame's request_id ("" when absent).
func (f Frame) RID() string {
	if f.RequestID == nil {
		return ""
	}
	return *f.RequestID
}

// ErrType is the §2.9 error type of a failed response.
func (f Frame) ErrType() string {
	var b struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(f.Payload, &b)
	return b.Error.Type
}

// Client is one RTM socket of a test.
type Client struct {
	T       *testing.T
	ws      *websocket.Conn
	frames  chan Frame
	closed  chan struct{}
	closeMu sync.Mutex
	closeEr error
	// Backlog holds frames received but not yet awaited, in order.
	Backlog []Frame
	seq     int
}

// Dial connects to url (ws://…); setup, if set, adjusts the socket (e.g.
// its ping handler) before the read loop starts. The socket is closed
// when the test ends.
func Dial(t *testing.T, url string, setup func(*websocket.Conn)) *Client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if setup != nil {
		setup(ws)
	}
	c := &Client{T: t, ws: ws, frames: make(chan Frame, 1024), closed: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() {
		ws.Close()
		<-c.closed
	})
	return c
}

func (c *Client) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.closeMu.Lock()
			c.closeEr = err
			c.closeMu.Unlock()
			return
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.T.Errorf("server sent invalid JSON %q: %v", b, err)
			continue
		}
		c.frames <- f
	}
}

// CloseErr waits for the server to close the socket and returns why.
func (c *Client) CloseErr() error {
	select {
	case <-c.closed:
	case <-time.After(WaitLimit):
		c.T.Fatalf("socket not closed")
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeEr
}

// SendRaw writes one text frame as is.
func (c *Client) SendRaw(b []byte) {
	c.T.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// TrySendRaw writes one text frame as is and returns the write error: a
// server that refuses a big frame may close the socket while it is
// still being written.
func (c *Client) TrySendRaw(b []byte) error {
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// Send sends a request and returns its request_id.
func (c *Client) Send(action string, payload any) string {
	c.T.Helper()
	c.seq++
	rid := fmt.Sprintf("req-%d", c.seq)
	m := map[string]any{"request_id": rid, "action": action}
	if payload != nil {
		m["payload"] = payload
	}
	b, _ := json.Marshal(m)
	c.SendRaw(b)
	return rid
}

// Recv returns the next frame from the socket. Frames the server sent
// before closing are all delivered before the close is reported.
func (c *Client) Recv() Frame {
	c.T.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.T.Fatalf("socket closed while waiting: %v", c.CloseErr())
	case <-time.After(WaitLimit):
		c.T.Fatalf("no frame")
	}
	return Frame{}
}

// Await returns the first frame matching ok, keeping the others (in
// order) for later calls.
func (c *Client) Await(ok func(Frame) bool) Frame {
	c.T.Helper()
	for i, f := range c.Backlog {
		if ok(f) {
			c.Backlog = append(c.Backlog[:i:i], c.Backlog[i+1:]...)
			return f
		}
	}
	for {
		f := c.Recv()
		if ok(f) {
			return f
		}
		c.Backlog = append(c.Backlog, f)
	}
}

// Response waits for the response to request rid.
func (c *Client) Response(rid string) Frame {
	c.T.Helper()
	return c.Await(func(f Frame) bool { return f.Type == "response" && f.RID() == rid })
}

// Push waits for a push of action.
func (c *Client) Push(action string) Frame {
	c.T.Helper()
	return c.Await(func(f Frame) bool { return f.Type == "push" && f.Action == action })
}

// Call sends a request and waits for its response.
func (c *Client) Call(action string, payload any) Frame {
	c.T.Helper()
	return c.Response(c.Send(action, payload))
}
