package wsconn

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxBatch bounds how many queued frames the writer sends in one write.
const maxBatch = 64

// Upgrade is up.Upgrade with the socket wrapped so that a Conn's writer
// can send the frames it finds queued together in one write(2) instead of
// one each: a request's response and the push it causes, or the pushes of
// several chats to one agent, leave in one system call. Sessions of
// sockets upgraded otherwise write a frame at a time.
func Upgrade(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request, h http.Header) (*websocket.Conn, error) {
	return up.Upgrade(hijacker{w}, r, h)
}

// hijacker hands gorilla the hijacked socket wrapped in a batchConn.
type hijacker struct{ http.ResponseWriter }

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("wsconn: response does not implement http.Hijacker")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &batchConn{Conn: c}, brw, nil
}

// batchConn collects what is written to it while a batch is open and
// writes it at once when the batch is flushed; otherwise it writes
// through. gorilla serialises its writers (the session's writer and
// control frames from other goroutines) around each frame; a control frame
// written during a batch joins it, in order.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	buf *[]byte // the open batch; nil when none
	// deadline is the write deadline gorilla set while the batch was
	// open, set on the socket by flush (pending): gorilla sets it before
	// every frame, and nothing reaches the socket before the flush. A
	// deadline set per frame was ~0.8 % of an in-process customer
	// 1,000 x 32 profile (the poller's timer modified each time), and one
	// per flush still 1 %: flush sets it only when the socket's (applied)
	// is earlier than asked, and then slack later than asked, so that a
	// busy socket sets it about once per slack. A write is still cut off
	// when it takes longer than asked plus slack at most.
	deadline time.Time
	pending  bool
	applied  time.Time     // the socket's write deadline
	slack    time.Duration // see deadline; set by begin
}

// SetWriteDeadline sets the socket's write deadline, or, while a batch is
// open, the one its flush sets.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	if b.buf != nil {
		b.deadline, b.pending = t, true
		b.mu.Unlock()
		return nil
	}
	b.applied = t
	b.mu.Unlock()
	return b.Conn.SetWriteDeadline(t)
}

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.buf != nil {
		*b.buf = append(*b.buf, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.Conn.Write(p)
}

// begin opens a batch; its write deadline may be set up to slack later
// than gorilla asks (see deadline).
func (b *batchConn) begin(slack time.Duration) {
	b.mu.Lock()
	b.slack = slack
	if b.buf == nil {
		b.buf = batchBufs.Get().(*[]byte)
	}
	b.mu.Unlock()
}

// flush closes the batch and writes it (within the write deadline last
// set on the socket).
func (b *batchConn) flush() error {
	b.mu.Lock()
	buf := b.buf
	b.buf = nil
	set := b.pending && (b.deadline.IsZero() != b.applied.IsZero() || b.applied.Before(b.deadline))
	var deadline time.Time
	if set {
		deadline = b.deadline
		if !deadline.IsZero() {
			deadline = deadline.Add(b.slack)
		}
		// Under b.mu, so that a control frame's deadline set meanwhile
		// (written through) is not overwritten by an older one.
		b.applied = deadline
		if err := b.Conn.SetWriteDeadline(deadline); err != nil {
			b.pending = false
			b.mu.Unlock()
			return err
		}
	}
	b.pending = false
	b.mu.Unlock()
	if buf == nil {
		return nil
	}
	var err error
	if len(*buf) > 0 {
		_, err = b.Conn.Write(*buf)
	}
	if cap(*buf) <= 64<<10 { // an outsized batch is not kept for idle sessions
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
	}
	return err
}
