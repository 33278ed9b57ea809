package wsconn

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// countConn counts the writes that reach the socket.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	c.mu.Unlock()
	return len(p), nil
}

// TestBatchConnOneWrite: what is written during a batch reaches the
// socket in one write, in order; outside a batch each write goes through.
func TestBatchConnOneWrite(t *testing.T) {
	cc := &countConn{}
	b := &batchConn{Conn: cc}
	_, _ = b.Write([]byte("a"))
	b.begin()
	for _, s := range []string{"b", "c", "d"} {
		_, _ = b.Write([]byte(s))
	}
	if len(cc.writes) != 1 {
		t.Fatalf("%d writes reached the socket during the batch, want only the one before it", len(cc.writes))
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	_, _ = b.Write([]byte("e"))
	got := fmt.Sprintf("%q", cc.writes)
	if want := `["a" "bcd" "e"]`; got != want {
		t.Fatalf("writes = %s, want %s", got, want)
	}
}

// TestBurstInOrder: a burst of frames, with keep-alive pings going out
// at the same time, arrives whole and in order.
func TestBurstInOrder(t *testing.T) {
	c, cli := pair(t, Options{PingInterval: time.Millisecond})
	const n = 500
	go func() {
		for i := range n {
			if err := c.Send(fmt.Appendf(nil, "frame %d", i)); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := range n {
		_, msg, err := cli.ReadMessage()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprintf("frame %d", i); string(msg) != want {
			t.Fatalf("frame %d = %q, want %q", i, msg, want)
		}
	}
}

// TestSendAll: SendAll's frames arrive whole and in order; frames that do
// not all fit in the send queue are none of them queued, and the session
// is cut off as a slow consumer, as Send does for one frame.
func TestSendAll(t *testing.T) {
	c, cli := pair(t, Options{SendQueue: 4})
	if err := c.SendAll([]byte("a"), []byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"a", "b", "c"} {
		_, got, err := cli.ReadMessage()
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if err := c.SendAll(make([][]byte, 5)...); err != ErrSlow {
		t.Fatalf("SendAll of 5 frames into a queue of 4: %v, want ErrSlow", err)
	}
	if c.Err() != ReasonSlow {
		t.Fatalf("session closed with %v, want %v", c.Err(), ReasonSlow)
	}
	if err := c.SendAll([]byte("d")); err != ErrClosed {
		t.Fatalf("SendAll after the cut-off: %v, want ErrClosed", err)
	}
}
