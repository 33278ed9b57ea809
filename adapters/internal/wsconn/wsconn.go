// Package wsconn wraps a gorilla/websocket connection into a session the
// gateway can afford to hold many of: exactly one writer goroutine (gorilla
// allows one concurrent writer), a bounded send queue so that a client that
// cannot keep up is cut off instead of growing memory, server-initiated
// control pings (browsers answer them; LiveChat's customer SDK never sends
// ping frames of its own), a read deadline that any frame or pong refreshes,
// a read limit, and a Close that any goroutine may call any number of times.
//
// The caller owns the read side: it calls Read in one goroutine and decides
// what to do with errors (a protocol may want to send a goodbye frame before
// closing, which still works after a read error).
package wsconn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults for zero Options fields.
const (
	DefaultSendQueue    = 256
	DefaultWriteTimeout = 10 * time.Second
	DefaultReadTimeout  = 60 * time.Second
	DefaultReadLimit    = 1 << 20
)

// Options tune a Conn. The zero value is usable.
type Options struct {
	// SendQueue bounds the frames waiting for the writer; a Send that finds
	// it full closes the session with ReasonSlow.
	SendQueue int
	// WriteTimeout bounds each frame write (and the flush done by Close).
	WriteTimeout time.Duration
	// ReadTimeout is how long the peer may stay silent: any frame, ping or
	// pong from it refreshes the deadline.
	ReadTimeout time.Duration
	// PingInterval is how often the server sends a control ping; default
	// ReadTimeout/2 so that a live peer's pong always lands in time.
	PingInterval time.Duration
	// ReadLimit is the largest message accepted; a bigger one makes Read
	// fail with ErrTooBig (gorilla has already sent close 1009 by then).
	ReadLimit int64
}

func (o Options) withDefaults() Options {
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = o.ReadTimeout / 2
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	return o
}

// Reason is why a session was closed: the close code and text sent to the
// peer. It is also the error Err reports.
type Reason struct {
	Code int
	Text string
}

func (r Reason) Error() string { return fmt.Sprintf("websocket closed (%d): %s", r.Code, r.Text) }

// Common reasons.
var (
	ReasonNormal    = Reason{websocket.CloseNormalClosure, "bye"}
	ReasonGoingAway = Reason{websocket.CloseGoingAway, "server shutting down"}
	ReasonSlow      = Reason{websocket.ClosePolicyViolation, "send queue full"}
	ReasonTimeout   = Reason{websocket.ClosePolicyViolation, "read timeout"}
	ReasonTooBig    = Reason{websocket.CloseMessageTooBig, "frame too large"}
)

// Errors Read and Send return; test with errors.Is.
var (
	// ErrClosed: the session was closed (by Close, a failed write or a
	// slow-consumer cut-off).
	ErrClosed = errors.New("wsconn: session closed")
	// ErrSlow: Send found the queue full; the session is now closed.
	ErrSlow = errors.New("wsconn: send queue full")
	// ErrReadTimeout: nothing (no frame, no pong) came within ReadTimeout.
	ErrReadTimeout = errors.New("wsconn: read timeout")
	// ErrTooBig: a message exceeded ReadLimit.
	ErrTooBig = errors.New("wsconn: message too large")
	// ErrPeerClosed: the peer sent a close frame or dropped the connection.
	ErrPeerClosed = errors.New("wsconn: peer closed")
)

// writerLinger is how long an idle writer waits for the next frame
// before its goroutine exits.
const writerLinger = 2 * time.Second

// Conn is one websocket session. Send, Close, Done, Err and Wait are safe
// for concurrent use; Read must be called from one goroutine at a time.
type Conn struct {
	ws *websocket.Conn
	// drained, once set, is closed when startDrain's reader is done.
	drained atomic.Pointer[chan struct{}]
	opts    Options

	// ready is signalled (without blocking) when a frame is queued for a
	// writer that is already running; room after each frame written, for
	// WaitRoom.
	ready   chan struct{}
	room    chan struct{}
	closing chan struct{} // closed by the first Close
	done    chan struct{} // closed once the writer is gone and the socket closed

	once  sync.Once
	cause error // first close cause; written once, read after closing
	flush bool  // whether the writer drains the queue before closing

	readTimeout atomic.Int64 // nanoseconds
	// readUntil is the read deadline last set on the socket, as
	// nanoseconds since epoch (monotonic); 0 forces the next refresh.
	readUntil atomic.Int64

	// The writer goroutine runs only while there is something to write
	// (or the session to close): an idle session holds no goroutine for
	// writing. wmu guards the send queue, writing (a writer runs) and
	// finished (the socket is closed). Keep-alive pings come from a timer.
	//
	// The queue (queue[head:], at most opts.SendQueue frames) is a slice
	// that grows as frames wait and is dropped when the writer exits: a
	// channel of SendQueue slots cost every held socket 3 KiB (128 slice
	// headers) whether or not anything ever waited in it.
	wmu       sync.Mutex
	queue     [][]byte
	head      int
	writing   bool
	finished  bool
	pingTimer *time.Timer
}

// New takes ownership of ws and starts its writer. The session lives until
// Close, a failed write or a slow-consumer cut-off.
func New(ws *websocket.Conn, opts Options) *Conn {
	opts = opts.withDefaults()
	c := &Conn{
		ws: ws, opts: opts,
		ready:   make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.readTimeout.Store(int64(opts.ReadTimeout))
	ws.SetReadLimit(opts.ReadLimit)
	ws.SetPongHandler(func(string) error { c.refresh(); return nil })
	ws.SetPingHandler(func(data string) error {
		c.refresh()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(opts.WriteTimeout))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || isTimeout(err) {
			return nil
		}
		return err
	})
	// Armed only once c.pingTimer is set: with a short interval the first
	// tick could otherwise run (and read the field) before AfterFunc
	// returned.
	c.pingTimer = time.AfterFunc(time.Duration(math.MaxInt64), c.ping)
	c.pingTimer.Reset(opts.PingInterval)
	return c
}

// ping sends a keep-alive ping and re-arms its timer; a failed ping ends
// the session.
func (c *Conn) ping() {
	if c.isClosing() {
		return
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)); err != nil {
		c.end(fmt.Errorf("wsconn ping: %w", err), false)
		return
	}
	c.pingTimer.Reset(c.opts.PingInterval)
}

// kick starts a writer unless one runs or the session is over.
func (c *Conn) kick() {
	c.wmu.Lock()
	start := c.startLocked()
	c.wmu.Unlock()
	if start {
		go c.writer()
	}
}

// startLocked marks a writer as running and reports whether the caller
// must start it (none runs and the session is not over); a running
// writer is woken instead. c.wmu is held.
func (c *Conn) startLocked() bool {
	if c.finished {
		return false
	}
	if c.writing {
		select {
		case c.ready <- struct{}{}:
		default:
		}
		return false
	}
	c.writing = true
	return true
}

// push queues msg unless the queue holds opts.SendQueue frames already.
// c.wmu is held.
func (c *Conn) pushLocked(msg []byte) bool {
	if len(c.queue)-c.head >= c.opts.SendQueue {
		return false
	}
	if len(c.queue) == cap(c.queue) && c.head > 0 {
		// Reuse the room of frames already written before growing.
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue, c.head = c.queue[:n], 0
	}
	c.queue = append(c.queue, msg)
	return true
}

// pop takes the oldest queued frame, if any.
func (c *Conn) pop() ([]byte, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.head == len(c.queue) {
		return nil, false
	}
	msg := c.queue[c.head]
	c.queue[c.head] = nil
	c.head++
	if c.head == len(c.queue) {
		c.queue, c.head = c.queue[:0], 0
	}
	return msg, true
}

// queued is how many frames wait for the writer.
func (c *Conn) queued() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.queue) - c.head
}

// SetReadTimeout changes how long the peer may stay silent from now on.
func (c *Conn) SetReadTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	c.readTimeout.Store(int64(d))
	c.readUntil.Store(0)
	c.refresh()
}

// epoch is what readUntil counts from: a monotonic clock reading, so that
// a change of the wall clock does not move it. Set once, never written.
var epoch = time.Now()

// readSlack is the share of the read timeout (1/readSlack) a peer may get
// on top of it: the deadline is set to ReadTimeout + ReadTimeout/readSlack
// from now, and pushed out again only once less than ReadTimeout is left.
// A deadline set on every frame (a runtime timer modified, the poller's
// lock) was ~0.7 % of an in-process customer 1,000 x 32 profile; now a
// busy socket sets it once per ReadTimeout/readSlack (a few seconds). A
// silent peer is still cut off, between ReadTimeout and ReadTimeout +
// ReadTimeout/readSlack after its last frame.
const readSlack = 16

// refresh pushes the read deadline out so that at least the read timeout
// is left; called before each read and by the ping and pong handlers
// (which run inside Read).
func (c *Conn) refresh() {
	d := time.Duration(c.readTimeout.Load())
	now := time.Since(epoch)
	if until := time.Duration(c.readUntil.Load()); until != 0 && until-now >= d {
		return
	}
	until := now + d + d/readSlack
	c.readUntil.Store(int64(until))
	_ = c.ws.SetReadDeadline(epoch.Add(until))
}

// Read returns the next text or binary message. If ctx ends while Read
// waits, the session is closed with ReasonGoingAway. After an error the
// session cannot be read any more; the caller should Close it (sending
// whatever goodbye its protocol wants first: writes still work).
func (c *Conn) Read(ctx context.Context) ([]byte, error) {
	if ctx.Done() != nil { // a context that cannot end needs no watcher
		stop := context.AfterFunc(ctx, func() { c.Close(ReasonGoingAway) })
		defer stop()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsconn read: %w", err)
	}
	c.refresh()
	_, msg, err := c.ws.ReadMessage()
	if err == nil {
		return msg, nil
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		// Whatever else is closing the session: the peer is still
		// writing the rest of the message (see startDrain).
		c.startDrain()
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("wsconn read: %w", ctx.Err())
	case c.isClosing():
		return nil, fmt.Errorf("%w: %w", ErrClosed, c.Err())
	case errors.Is(err, websocket.ErrReadLimit):
		return nil, fmt.Errorf("%w: limit %d bytes", ErrTooBig, c.opts.ReadLimit)
	case isTimeout(err):
		return nil, ErrReadTimeout
	default:
		return nil, fmt.Errorf("%w: %w", ErrPeerClosed, err)
	}
}

// Send queues one text frame. It never blocks: when the queue is full the
// session is closed with ReasonSlow and ErrSlow returned, because a client
// that cannot keep up must not make the server buffer without bound. The
// caller must not modify msg afterwards.
func (c *Conn) Send(msg []byte) error { return c.SendAll(msg) }

// SendAll queues msgs as Send does, all under one lock and with one wake
// of the writer, so that frames meant to leave together (a DDP method's
// answer and the stream frame of the message it posted) meet in the
// writer's batch (writeQueued: one write(2) on a socket from Upgrade)
// instead of the writer waking for the first and writing it alone. A queue
// without room for all of them closes the session with ReasonSlow, as Send
// does; none of them is queued then.
func (c *Conn) SendAll(msgs ...[]byte) error {
	if c.isClosing() {
		return ErrClosed
	}
	c.wmu.Lock()
	if c.isClosing() {
		c.wmu.Unlock()
		return ErrClosed
	}
	if len(c.queue)-c.head+len(msgs) > c.opts.SendQueue {
		c.wmu.Unlock()
		c.end(ReasonSlow, false)
		return ErrSlow
	}
	for _, m := range msgs {
		c.pushLocked(m)
	}
	start := c.startLocked()
	c.wmu.Unlock()
	if start {
		go c.writer()
	}
	return nil
}

// WaitRoom blocks until the send queue has room for n more frames, so that
// a session answering requests can apply backpressure (stop taking work,
// and so stop reading, while its client does not read) instead of
// overflowing the queue. It fails with ErrClosed once the session closes,
// with ctx's error, and, when nothing is written for WriteTimeout, closes
// the session as a slow consumer (ErrSlow), as Send would.
func (c *Conn) WaitRoom(ctx context.Context, n int) error {
	n = min(n, c.opts.SendQueue)
	var stall *time.Timer
	for {
		if c.isClosing() {
			return ErrClosed
		}
		if c.opts.SendQueue-c.queued() >= n {
			if stall != nil {
				stall.Stop()
			}
			return nil
		}
		if stall == nil {
			stall = time.NewTimer(c.opts.WriteTimeout)
			defer stall.Stop()
		}
		select {
		case <-c.room:
		case <-c.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("wsconn wait room: %w", ctx.Err())
		case <-stall.C:
			c.end(ReasonSlow, false)
			return ErrSlow
		}
	}
}

// Close ends the session: frames already queued are still written (within
// WriteTimeout), then a close frame carrying r, then the socket is closed.
// Only the first call counts; later calls do nothing. It does not wait;
// see Wait.
func (c *Conn) Close(r Reason) { c.end(r, true) }

func (c *Conn) end(cause error, flush bool) {
	c.once.Do(func() {
		c.cause, c.flush = cause, flush
		close(c.closing)
		c.kick() // a writer closes the socket
	})
}

func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Done is closed once the session is fully closed (writer gone, socket
// closed).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err reports why the session was closed: a Reason, or the write error that
// ended it. It is nil while the session is open.
func (c *Conn) Err() error {
	if !c.isClosing() {
		return nil
	}
	return c.cause
}

// Wait blocks until the session is fully closed or ctx ends.
func (c *Conn) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wsconn wait: %w", ctx.Err())
	}
}

// RemoteAddr returns the peer's address, for logs.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// writer is the only goroutine that writes data frames. It writes the
// queue until it is empty, then exits; when the session closes it closes
// the socket and marks the session done.
func (c *Conn) writer() {
	// A busy socket keeps its writer: it lingers a moment for the next
	// frame instead of exiting and being started again for every frame
	// (a new goroutine's stack grows again on each write).
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	for {
		// Closing wins over pending work, so that a slow consumer's queue
		// is dropped rather than written.
		if c.isClosing() {
			c.finish()
			return
		}
		if msg, ok := c.pop(); ok {
			if c.queued() == 0 {
				// Let the goroutines just made runnable queue what they
				// are about to (the push a response released, the next
				// push of a burst) so that it joins this write.
				runtime.Gosched()
			}
			// ErrCloseSent: gorilla's reader has just sent a close frame
			// itself (a message over ReadLimit: 1009; a protocol error),
			// and Read is about to report why. Ending the session here,
			// as for a broken socket, raced Read: the session closed
			// without draining the peer's big message, and the peer,
			// still writing it, got a reset instead of the 1009 (issue 16,
			// seen only while pushes were going out). The frame is
			// dropped; the session ends through Read.
			if err := c.writeQueued(msg); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
				c.end(fmt.Errorf("wsconn write: %w", err), false)
			}
			select {
			case c.room <- struct{}{}:
			default:
			}
			continue
		}
		linger.Reset(writerLinger)
		select {
		case <-c.ready:
			continue
		case <-c.closing:
			continue
		case <-linger.C:
		}
		c.wmu.Lock()
		if len(c.queue) == c.head && !c.isClosing() {
			c.writing = false
			c.queue, c.head = nil, 0 // an idle session keeps no queue
			c.wmu.Unlock()
			return
		}
		c.wmu.Unlock()
	}
}

// The drain after a too-large message (startDrain) reads on while the
// peer keeps sending: it stops after drainIdle without a byte, after
// drainMaxBytes, or after drainMax in all, whichever comes first. A fixed
// window was not enough: a client writing several MiB while the machine
// was busy (pushes streaming to it) was still writing when the window
// closed, and got the reset the drain exists to avoid.
const (
	drainIdle     = 2 * time.Second
	drainMax      = 30 * time.Second
	drainMaxBytes = 64 << 20
)

// startDrain, called by the reader after a message over ReadLimit (gorilla
// has sent close 1009), reads and discards the rest of what the peer sends
// (see drainIdle), and finish waits for it before closing the socket:
// closing a TCP socket with unread data sends RST, and the peer, still
// writing its big message, then sees a reset (clients that give up on a
// write error report 1006, abnormal closure) instead of reading our 1009.
// The reader reads no more after an error, so the drain is the only
// reader.
func (c *Conn) startDrain() {
	done := make(chan struct{})
	nc := c.ws.UnderlyingConn()
	c.drained.Store(&done)
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		start, total := time.Now(), 0
		for total < drainMaxBytes && time.Since(start) < drainMax {
			_ = nc.SetReadDeadline(time.Now().Add(drainIdle))
			n, err := nc.Read(buf)
			total += n
			if err != nil {
				return
			}
		}
	}()
}

// finish flushes (for a graceful Close), sends the close frame and closes
// the socket; the session is done.
func (c *Conn) finish() {
	c.pingTimer.Stop()
	c.shutdown()
	if d := c.drained.Load(); d != nil {
		select {
		case <-*d:
		case <-time.After(drainMax + time.Second):
		}
	}
	c.ws.Close()
	c.wmu.Lock()
	c.finished = true
	c.wmu.Unlock()
	close(c.done)
}

// writeQueued writes msg and, on a socket from Upgrade, the frames queued
// behind it (up to maxBatch) in one write.
func (c *Conn) writeQueued(msg []byte) error {
	bc, ok := c.ws.NetConn().(*batchConn)
	if !ok {
		return c.write(msg)
	}
	bc.begin(c.opts.WriteTimeout / writeSlack)
	err := c.write(msg)
	for n := 1; err == nil && n < maxBatch; n++ {
		next, ok := c.pop()
		if !ok {
			break
		}
		err = c.write(next)
	}
	if ferr := bc.flush(); err == nil {
		err = ferr
	}
	return err
}

// writeSlack: a batch's write may take up to WriteTimeout/writeSlack longer
// than WriteTimeout before it is cut off (see batchConn.deadline).
const writeSlack = 8

func (c *Conn) write(msg []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// shutdown flushes the queue (for a graceful Close) and sends the close
// frame, all within one WriteTimeout so that a dead peer cannot hold it.
func (c *Conn) shutdown() {
	deadline := time.Now().Add(c.opts.WriteTimeout)
	_ = c.ws.SetWriteDeadline(deadline)
	if c.flush {
		for msg, ok := c.pop(); ok; msg, ok = c.pop() {
			if c.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}
	r, ok := c.cause.(Reason)
	if !ok {
		return // the peer is gone or broken: no close frame to send
	}
	text := r.Text
	if len(text) > 120 { // control frames carry at most 125 bytes
		text = text[:120]
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(r.Code, text), deadline)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
