package rocketchat

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/ddp"
	"chatgate/adapters/internal/gopool"
	"chatgate/adapters/internal/wsconn"
	"chatgate/core/model"
)

// wsconnFellBehind closes a session whose room feed the bus cut off.
var wsconnFellBehind = wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "fell behind"}

// ddpSession is one DDP connection. The reader goroutine (run) answers
// connect, ping and pong at once, as Meteor does, and hands method, sub and
// unsub frames to one worker goroutine, so that they run one at a time in
// the order sent (a method's writes are ordered, and an unsub never
// overtakes its sub). Each followed room's notices become `changed` frames
// on a goroutine that runs while some are queued (pumpFeed).
//
// Unlike the LiveChat agent RTM (package rtmconn), methods are not
// pipelined: Meteor runs one connection's methods in order unless a method
// calls this.unblock, and clients rely on it (a message then closeRoom);
// and a DDP connection here is one visitor's widget, whose methods all
// touch its one room, so they would have to run in order anyway.
type ddpSession struct {
	s      *Surface
	conn   *wsconn.Conn
	sockjs bool
	id     string // the DDP session id sent in `connected`
	// originTag tags the desk commands this connection issues (origin).
	originTag string
	// upgrade is what the upgrade request said about the server and the
	// peer, for the requests methods build (restContext): URLs built
	// inside methods (livechat:getInitialData) take their scheme and host
	// from it as a REST request's would.
	upgrade upgradeInfo

	lastRecv  atomic.Int64 // unix nanos of the last frame received
	pingSent  atomic.Int64 // unix nanos of the last heartbeat ping (0: none yet)
	connected atomic.Bool

	work chan *ddp.Message
	// workCtx, workMu, working, workers: the worker that runs queued
	// frames exists only while some are queued (wake).
	workCtx context.Context
	workMu  sync.Mutex
	working bool
	workers sync.WaitGroup

	// Owned by the worker goroutine (read at teardown after it exits).
	token       string // bound by livechat:setUpConnection
	subs        map[string]*ddpSub
	lastOffline time.Time // livechat:sendOfflineMessage rate limit

	// echo is set by a method handler that posted a message this
	// session's feed of the room will stream back (sendMessageLivechat),
	// and read by method (worker goroutine only): the method's answer then
	// leaves together with that stream frame (answer).
	echo echoRef

	mu    sync.Mutex // guards feeds, their sub sets, held, and sends of stream frames
	feeds map[model.ConvID]*ddpFeed
	// held is a method's answer waiting for the feed to stream the
	// message the method posted, parked the feed's frames of that message
	// waiting for the method's answer, so that both go out in one write;
	// posting is set while sendMessageLivechat posts (answer).
	held    *heldAnswer
	parked  *parkedEcho
	posting bool
	pumps   sync.WaitGroup // the feeds' running drains
}

func (s *Surface) newDDPSession(conn *wsconn.Conn, sockjs bool, r *http.Request) *ddpSession {
	ss := &ddpSession{
		s: s, conn: conn, sockjs: sockjs, id: randomID(),
		work:  make(chan *ddp.Message, ddpWorkQueue),
		subs:  make(map[string]*ddpSub),
		feeds: make(map[model.ConvID]*ddpFeed),
	}
	ss.upgrade = upgradeInfo{host: r.Host, tls: r.TLS, remoteAddr: r.RemoteAddr, forwardedProto: r.Header.Get("X-Forwarded-Proto")}
	ss.originTag = System + ".ddp/" + ss.id
	return ss
}

// upgradeInfo keeps, of a session's upgrade request, what a method's
// in-process request needs: the host and TLS state the scheme and host of
// built URLs come from, the peer's address (Config.TrustForwarded decides
// on it whether X-Forwarded-Proto is believed) and that header. Not the
// request itself: it is held as long as the socket, ~440 bytes per idle
// session (docs/performance.md, round 8).
type upgradeInfo struct {
	host, remoteAddr, forwardedProto string
	tls                              *tls.ConnectionState
}

// logger is the surface's logger with the session's id and peer. It is
// built when a line is logged (errors, the session's end, debug lines)
// rather than held by every idle session (~370 bytes each:
// docs/performance.md, round 8).
func (ss *ddpSession) logger() *zerolog.Logger {
	l := ss.s.log.With().Str("ddp_session", ss.id).Str("remote", ss.conn.RemoteAddr().String()).Logger()
	return &l
}

// origin tags the desk commands this connection issues.
func (ss *ddpSession) origin() string { return ss.originTag }

// send queues one DDP frame (in SockJS framing on /sockjs/...). A full
// queue closes the session (wsconn); nothing else to do then.
func (ss *ddpSession) send(frame []byte) {
	if ss.sockjs {
		frame = sockjsFrame(frame)
	}
	_ = ss.conn.Send(frame)
}

// sendAll queues frames to leave together (wsconn.SendAll: one wake of
// the writer, so one write(2) for all of them).
func (ss *ddpSession) sendAll(frames ...[]byte) {
	if ss.sockjs {
		for i, f := range frames {
			frames[i] = sockjsFrame(f)
		}
	}
	_ = ss.conn.SendAll(frames...)
}

// run serves the socket until it closes or ctx ends, then tears the
// session down: worker, subscriptions and pumps, presence, socket.
func (ss *ddpSession) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	ss.workCtx = ctx
	// No goroutine waits for an idle session's next heartbeat or frame
	// (a held connection costs its reader and the socket's writer only):
	// the heartbeat is a timer, the worker runs while frames are queued.
	stopHeartbeat := ss.startHeartbeat(ctx)
	defer func() {
		cancel()
		stopHeartbeat()
		ss.workers.Wait()
		ss.closeFeeds()
		ss.pumps.Wait()
		if ss.token != "" {
			ss.s.unbindToken(context.WithoutCancel(ctx), ss.token)
		}
		ss.conn.Close(wsconn.ReasonNormal)
		<-ss.conn.Done() // bounded by the write timeout
		ss.logger().Info().Err(ss.conn.Err()).Msg("ddp session left")
	}()
	connectTimer := time.AfterFunc(ss.s.ddp.connectTimeout, func() {
		if !ss.connected.Load() {
			ss.conn.Close(wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "connect timeout"})
		}
	})
	defer connectTimer.Stop()

	if ss.sockjs {
		_ = ss.conn.Send([]byte("o"))
	}
	ss.send(ddp.ServerID())
	for {
		frame, err := ss.conn.Read(ctx)
		if err != nil {
			ss.readFailed(err)
			return
		}
		ss.lastRecv.Store(time.Now().UnixNano())
		if !ss.sockjs {
			if !ss.handle(ctx, frame) {
				return
			}
			continue
		}
		msgs, ok := sockjsMessages(frame)
		if !ok {
			// SockJS closes the session on a broken frame.
			ss.conn.Close(wsconn.Reason{Code: websocket.CloseUnsupportedData, Text: "broken sockjs frame"})
			return
		}
		for _, m := range msgs {
			if !ss.handle(ctx, m) {
				return
			}
		}
	}
}

func (ss *ddpSession) readFailed(err error) {
	switch {
	case errors.Is(err, wsconn.ErrReadTimeout):
		ss.conn.Close(wsconn.ReasonTimeout)
	case errors.Is(err, wsconn.ErrTooBig):
		ss.conn.Close(wsconn.ReasonTooBig)
	default:
		ss.conn.Close(wsconn.ReasonNormal)
	}
	ss.logger().Debug().Err(err).Msg("ddp read ended")
}

// handle processes one frame on the reader goroutine; false ends the
// session.
func (ss *ddpSession) handle(ctx context.Context, frame []byte) bool {
	if max := ss.s.cfg.MaxFrame; len(frame) > max {
		ss.oversize(frame, max)
		return true
	}
	m, err := ddp.DecodeFrame(frame)
	switch {
	case errors.Is(err, ddp.ErrNotObject):
		// Meteor's parseDDP returns null for non-JSON and non-objects.
		ss.send(ddp.ErrorFrame("Bad request", nil))
		return true
	case err != nil:
		// An EJSON value Meteor's parser throws on ($type of an undefined
		// custom type, malformed $date/$binary).
		ss.send(ddp.ErrorFrame("Parse error", nil))
		return true
	}
	msg := m.Msg()
	if msg == "" {
		ss.send(ddp.ErrorFrame("Bad request", m.Fields()))
		return true
	}
	if msg == "connect" {
		if ss.connected.Load() {
			ss.send(ddp.ErrorFrame("Already connected", m.Fields()))
			return true
		}
		version, ok := ddp.NegotiateVersion(m)
		if !ok {
			ss.send(ddp.Failed(version))
			ss.conn.Close(wsconn.Reason{Code: websocket.CloseProtocolError, Text: "unsupported DDP version"})
			return false
		}
		ss.connected.Store(true)
		ss.send(ddp.Connected(ss.id))
		return true
	}
	if !ss.connected.Load() {
		ss.send(ddp.ErrorFrame("Must connect first", m.Fields()))
		return true
	}
	switch msg {
	case "ping":
		// Answered at once, not queued behind methods (Meteor does the
		// same); the id is echoed when there is one.
		if id, ok := m.Str("id"); ok && id != "" {
			ss.send(ddp.Pong(id))
		} else {
			ss.send(ddp.Pong(""))
		}
	case "pong":
		// Any frame counts as a pong: nothing more to do.
	case "method", "sub", "unsub":
		select {
		case ss.work <- m:
		case <-ctx.Done():
			return false
		}
		ss.wake()
	default:
		ss.send(ddp.ErrorFrame("Bad request", m.Fields()))
	}
	return true
}

// oversize answers a frame over cfg.MaxFrame without handling it: an
// `error` frame, and, when the frame was a method or sub with an id, its
// `result` error / `nosub` too, so that the caller's promise does not hang.
func (ss *ddpSession) oversize(frame []byte, limit int) {
	var peek struct {
		Msg json.RawMessage `json:"msg"`
		ID  json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(frame, &peek)
	var msg, id string
	_ = json.Unmarshal(peek.Msg, &msg)
	_ = json.Unmarshal(peek.ID, &id)
	reason := fmt.Sprintf("Frame exceeds %d bytes", limit)
	offending := ddp.Obj{}
	if msg != "" && len(msg) <= 64 {
		offending = append(offending, ddp.KV{Key: "msg", Value: msg})
	}
	if id != "" && len(id) <= 256 {
		offending = append(offending, ddp.KV{Key: "id", Value: id})
	}
	ss.send(ddp.ErrorFrame("Frame too large", offending))
	if id == "" || len(id) > 256 || !ss.connected.Load() {
		return
	}
	tooLarge := &ddp.Error{Code: 413, Reason: reason}
	switch msg {
	case "method":
		ss.send(ddp.ResultError(id, tooLarge))
	case "sub":
		ss.send(ddp.NoSub(id, tooLarge))
	}
}

// startHeartbeat implements Meteor's server heartbeat: after `heartbeat`
// without any frame from the client, send {"msg":"ping"}; if nothing at
// all arrives within `heartbeatTimeout` after that, close the socket. It
// checks on a timer that re-arms itself, and returns the function that
// stops it.
func (ss *ddpSession) startHeartbeat(ctx context.Context) (stop func()) {
	interval, timeout := ss.s.ddp.heartbeat, ss.s.ddp.heartbeatTimeout
	if interval <= 0 {
		return func() {}
	}
	period := max(min(interval, timeout)/4, time.Millisecond)
	ss.lastRecv.Store(time.Now().UnixNano())
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	// t is assigned under mu: with a tiny period the first tick can run
	// before AfterFunc has returned, and it reads t under mu.
	mu.Lock()
	t = time.AfterFunc(period, func() {
		if ctx.Err() != nil || !ss.beat(interval, timeout) {
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(period)
		}
		mu.Unlock()
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// beat is one heartbeat check; false when it closed the session.
func (ss *ddpSession) beat(interval, timeout time.Duration) bool {
	if !ss.connected.Load() {
		return true
	}
	now, last := time.Now().UnixNano(), ss.lastRecv.Load()
	if sent := ss.pingSent.Load(); sent != 0 && last < sent {
		// A ping is out and nothing came since.
		if time.Duration(now-sent) >= timeout {
			ss.logger().Debug().Msg("ddp heartbeat timeout")
			ss.conn.Close(wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "heartbeat timeout"})
			return false
		}
		return true
	}
	if time.Duration(now-last) >= interval {
		ss.pingSent.Store(now)
		ss.send(ddp.Ping(""))
	}
	return true
}

// wake makes sure a worker runs the queued frames: one at a time, in
// order, on a goroutine that exists only while frames are queued.
func (ss *ddpSession) wake() {
	ss.workMu.Lock()
	defer ss.workMu.Unlock()
	if ss.working {
		return
	}
	ss.working = true
	ss.workers.Add(1)
	go ss.worker(ss.workCtx)
}

// worker runs method, sub and unsub frames in order until the queue is
// empty.
func (ss *ddpSession) worker(ctx context.Context) {
	defer ss.workers.Done()
	// A method runs deep (the desk's post, its commit, the store's
	// encoding: about 12 KiB), and this goroutine is new for each burst
	// of frames: one copy of its stack up front instead of one per
	// doubling as the first method runs (runtime.newstack under
	// postCmd.attempt, 3 % of the gateway's CPU in the DDP relay at
	// 1,000 × 32; docs/performance.md, "Round 9").
	gopool.Grow()
	for {
		select {
		case <-ctx.Done():
			ss.workMu.Lock()
			ss.working = false
			ss.workMu.Unlock()
			return
		case m := <-ss.work:
			// Backpressure: a frame runs only when its answers fit in the
			// send queue. While the client does not read, the worker
			// waits, the work queue fills, the reader stops reading, and
			// TCP holds the client back; a client pipelining many methods
			// is answered, not dropped as a slow consumer.
			// On error the session is closing: the frame still runs (its
			// answers are dropped), so that the queue drains and a reader
			// blocked on it is released, as before.
			_ = ss.conn.WaitRoom(ctx, ddpSendQueue/2)
			ss.run1(ctx, m)
			continue
		default:
		}
		ss.workMu.Lock()
		if len(ss.work) == 0 {
			ss.working = false
			ss.workMu.Unlock()
			return
		}
		ss.workMu.Unlock()
	}
}

// run1 runs one queued frame. A panic (a bug, never input: methods
// recover their own) is logged and the subscription refused; the session
// goes on.
func (ss *ddpSession) run1(ctx context.Context, m *ddp.Message) {
	defer func() {
		if r := recover(); r != nil {
			ss.logger().Error().Interface("panic", r).Str("msg", m.Msg()).Msg("ddp frame handler panicked")
			if id, ok := m.ID(); ok && m.Msg() == "sub" {
				ss.send(ddp.NoSub(id, ddp.InternalError()))
			}
		}
	}()
	switch m.Msg() {
	case "method":
		ss.method(ctx, m)
	case "sub":
		ss.sub(ctx, m)
	case "unsub":
		ss.unsub(m)
	}
}

// --- SockJS framing -------------------------------------------------------------

// sockjsFrame wraps one message as a SockJS array frame: a["<json>"].
func sockjsFrame(msg []byte) []byte {
	s, _ := json.Marshal(string(msg))
	out := make([]byte, 0, len(s)+3)
	out = append(out, 'a', '[')
	out = append(out, s...)
	return append(out, ']')
}

// sockjsMessages reads a client SockJS frame: a JSON array of strings, or
// one JSON string.
func sockjsMessages(frame []byte) ([][]byte, bool) {
	var list []string
	if err := json.Unmarshal(frame, &list); err != nil {
		var one string
		if err := json.Unmarshal(frame, &one); err != nil {
			return nil, false
		}
		list = []string{one}
	}
	out := make([][]byte, 0, len(list))
	for _, s := range list {
		if s != "" {
			out = append(out, []byte(s))
		}
	}
	return out, true
}
