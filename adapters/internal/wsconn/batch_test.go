package wsconn

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
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
	b.begin(0)
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

// deadlineConn counts the deadlines set on the socket.
type deadlineConn struct {
	net.Conn
	mu     sync.Mutex
	reads  int
	writes []time.Time
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	d.reads++
	d.mu.Unlock()
	return d.Conn.SetReadDeadline(t)
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.writes = append(d.writes, t)
	d.mu.Unlock()
	if _, fake := d.Conn.(*countConn); fake {
		return nil
	}
	return d.Conn.SetWriteDeadline(t)
}

// TestBatchConnDeadlineAtFlush: the write deadlines gorilla sets for each
// frame of a batch reach the socket once, the last one, when the batch is
// written; outside a batch each goes through.
func TestBatchConnDeadlineAtFlush(t *testing.T) {
	dc := &deadlineConn{Conn: &countConn{}}
	b := &batchConn{Conn: dc}
	t0 := time.Unix(1000, 0)
	_ = b.SetWriteDeadline(t0)
	b.begin(0)
	for i := range 3 {
		_ = b.SetWriteDeadline(t0.Add(time.Duration(i+1) * time.Second))
		_, _ = b.Write([]byte("x"))
	}
	if len(dc.writes) != 1 {
		t.Fatalf("%d deadlines reached the socket during the batch, want only the one before it", len(dc.writes))
	}
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	_ = b.SetWriteDeadline(t0.Add(time.Hour))
	want := []time.Time{t0, t0.Add(3 * time.Second), t0.Add(time.Hour)}
	if fmt.Sprint(dc.writes) != fmt.Sprint(want) {
		t.Fatalf("deadlines %v, want %v", dc.writes, want)
	}
}

// TestReadDeadlineNotPerFrame: a peer that keeps talking has its read
// deadline pushed out once in a while, not before every frame; and a
// change of the read timeout sets it at once.
func TestReadDeadlineNotPerFrame(t *testing.T) {
	c, cli := pair(t, Options{ReadTimeout: time.Minute})
	bc := c.ws.NetConn().(*batchConn)
	dc := &deadlineConn{Conn: bc.Conn}
	bc.Conn = dc // before the first read: nothing else uses it yet
	const n = 50
	for i := range n {
		if err := cli.WriteMessage(1, fmt.Appendf(nil, "f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if _, err := c.Read(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	dc.mu.Lock()
	got := dc.reads
	dc.mu.Unlock()
	if got > 2 {
		t.Fatalf("the read deadline was set %d times for %d frames", got, n)
	}
	c.SetReadTimeout(2 * time.Minute)
	dc.mu.Lock()
	after := dc.reads
	dc.mu.Unlock()
	if after != got+1 {
		t.Fatalf("SetReadTimeout set the deadline %d times", after-got)
	}
}

// TestWriterWaitsForReleasedPush: a frame queued by a goroutine that was
// made runnable just before the writer took its frame (the push a
// response releases, on the drain's goroutine) leaves in the same write:
// the writer lets runnable goroutines go first when it has a single
// frame. On one P the order is fixed: the releasing goroutine readies the
// pusher, then queues its frame (readying the writer), then blocks; the
// writer runs first.
func TestWriterWaitsForReleasedPush(t *testing.T) {
	c, cli := pair(t, Options{})
	bc := c.ws.NetConn().(*batchConn)
	var writes atomic.Int64
	bc.Conn = writeCounter{Conn: bc.Conn, n: &writes} // before the first write: nothing else uses it yet
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const rounds = 20
	for i := range rounds {
		release := make(chan struct{})
		pushed := make(chan struct{})
		go func() {
			<-release
			_ = c.Send(fmt.Appendf(nil, "push %d", i))
			close(pushed)
		}()
		runtime.Gosched() // the pusher waits on release
		close(release)
		_ = c.Send(fmt.Appendf(nil, "response %d", i))
		<-pushed
		for _, want := range []string{"response", "push"} {
			_, msg, err := cli.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%s %d", want, i); string(msg) != want {
				t.Fatalf("got %q, want %q", msg, want)
			}
		}
	}
	if n := writes.Load(); n > rounds+rounds/4 {
		t.Fatalf("%d writes for %d response and push pairs", n, rounds)
	}
}

// TestBatchConnDeadlineSlack: a batch sets the socket's write deadline
// slack later than asked, and the batches after it, asking for deadlines
// up to that one, set none; a later one sets it again, and so does a
// control frame's written through between batches (its deadline is the
// socket's from then on).
func TestBatchConnDeadlineSlack(t *testing.T) {
	dc := &deadlineConn{Conn: &countConn{}}
	b := &batchConn{Conn: dc}
	t0 := time.Unix(1000, 0)
	batch := func(deadline time.Time) {
		b.begin(time.Second)
		_ = b.SetWriteDeadline(deadline)
		_, _ = b.Write([]byte("x"))
		if err := b.flush(); err != nil {
			t.Fatal(err)
		}
	}
	batch(t0)                                   // sets t0+1s
	batch(t0.Add(500 * time.Millisecond))       // within: none
	batch(t0.Add(time.Second))                  // within: none
	batch(t0.Add(1500 * time.Millisecond))      // past: sets t0+2.5s
	_ = b.SetWriteDeadline(t0.Add(time.Second)) // a ping, outside a batch
	batch(t0.Add(2 * time.Second))              // past the ping's: sets t0+3s
	want := []time.Time{t0.Add(time.Second), t0.Add(2500 * time.Millisecond), t0.Add(time.Second), t0.Add(3 * time.Second)}
	if fmt.Sprint(dc.writes) != fmt.Sprint(want) {
		t.Fatalf("deadlines %v, want %v", dc.writes, want)
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
