package rocketchat

// ddp*.go serve Rocket.Chat's DDP realtime API (spec §6) as the livechat
// widget and @rocket.chat/sdk use it, over one websocket per client:
//
//	GET /websocket                        raw DDP (what the widget opens)
//	GET /sockjs/websocket                 the same (Meteor's raw alias)
//	GET /sockjs/:server/:session/websocket DDP in SockJS framing ("o", a[...])
//	GET /sockjs/info                      SockJS' info document
//
// Layers: ddp.go owns the sockets and shutdown; ddp_session.go is one
// connection (handshake, heartbeats, frame errors, the ordered worker);
// ddp_subs.go the stream subscriptions and their fan-out from the desk's
// bus; ddp_methods.go the methods. Frames and EJSON come from
// adapters/internal/ddp.
//
// Visitors never log in over DDP: each subscription carries the visitor
// token in its params, and a token reaches only its own visitor's rooms.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"chatgate/adapters/internal/subdrain"
	"chatgate/adapters/internal/wsconn"
	"chatgate/core/ratelimit"
)

// Defaults of the DDP side.
const (
	// Meteor's server heartbeat (ddp-server livedata_server.js, Server
	// options): a ping after 15 s without any frame from the client, the
	// socket closed 15 s later if still nothing came. The spec marked
	// these [U]; they were checked in meteor/meteor's source.
	ddpHeartbeatInterval = 15 * time.Second
	ddpHeartbeatTimeout  = 15 * time.Second
	// ddpConnectTimeout closes sockets that never send `connect` (the SDK
	// itself gives up after 20 s).
	ddpConnectTimeout = 30 * time.Second
	// ddpSendQueue bounds the frames waiting for one socket's writer.
	ddpSendQueue = 128
	// ddpWorkQueue bounds method/sub/unsub frames read but not yet run.
	ddpWorkQueue = 64
	// ddpBusQueue is the notice queue of one room followed by a session.
	ddpBusQueue = 256
	// ddpHardFrameCap is the socket read limit: frames above MaxFrame (but
	// under this) get an error frame and the session goes on; above it the
	// socket is closed with 1009 without reading the frame.
	ddpHardFrameCap = 1 << 20
	// ddpMethodTimeout bounds one method call.
	ddpMethodTimeout = 15 * time.Second
	// ddpRoomPoll: how often a followed room is checked for what the bus
	// does not publish (agent presence, queue position).
	ddpRoomPoll = 3 * time.Second
)

// Client room ids (room_ids.go): KindRoomID binds the _id a client chose
// for a room it started (one per conversation; the room's _id everywhere);
// KindRoomAlias binds a further id a legacy client used for the visitor's
// already open room.
const (
	KindRoomID    = "room_id"
	KindRoomAlias = "room_alias"
)

// ddpState is the DDP side's state.
type ddpState struct {
	upgrader websocket.Upgrader

	// Timings, settable by tests before the first connection.
	heartbeat, heartbeatTimeout, connectTimeout time.Duration
	// offlineMinInterval rate-limits livechat:sendOfflineMessage per
	// connection; roomPoll is how often followed rooms are checked for
	// agent presence and queue position changes.
	offlineMinInterval, roomPoll time.Duration
	// echoWait bounds a method answer's wait for its message's stream
	// frame, and the frame's for the answer (ddpEchoWait; tests lengthen
	// it so that a wait that should not happen shows).
	echoWait time.Duration

	mu       sync.Mutex
	running  bool
	stopped  bool
	sessions map[*ddpSession]struct{}
	wg       sync.WaitGroup // live sessions
	// bound counts the connections bound to each visitor token by
	// livechat:setUpConnection (presence: online while any is open).
	bound map[string]int
	// drains runs every session's room feeds on lingering goroutines
	// (subdrain.Pool): a fresh goroutine per drain grew its stack on
	// nearly every message once rooms outnumber messages per collection.
	drains *subdrain.Pool
}

// ddpDrainLinger is how long a feed-draining goroutine waits for the next
// drain: long enough to carry its grown stack from one message to the
// next under load, short enough that a burst's extra goroutines are soon
// gone.
const ddpDrainLinger = time.Second

func (s *Surface) initDDP() {
	s.ddp.upgrader = websocket.Upgrader{
		// The widget runs in iframes on any site, and the socket carries
		// no ambient credential (the visitor token travels in frames), so
		// a cross-site page gains nothing by opening one.
		CheckOrigin: func(*http.Request) bool { return true },
		// Held connections are mostly idle: a small read buffer, and a
		// write buffer borrowed from a pool only while writing.
		ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{},
	}
	s.ddp.heartbeat, s.ddp.heartbeatTimeout = ddpHeartbeatInterval, ddpHeartbeatTimeout
	s.ddp.connectTimeout = ddpConnectTimeout
	s.ddp.offlineMinInterval = 5 * time.Second
	s.ddp.roomPoll = ddpRoomPoll
	s.ddp.echoWait = ddpEchoWait
	s.ddp.sessions = make(map[*ddpSession]struct{})
	s.ddp.bound = make(map[string]int)
	s.ddp.drains = subdrain.NewPool(ddpDrainLinger)
}

func (s *Surface) mountDDP(r gin.IRouter) {
	r.GET("/websocket", s.serveDDP(false))
	r.GET("/sockjs/websocket", s.serveDDP(false))
	r.GET("/sockjs/:server/:session/websocket", s.serveDDP(true))
	r.GET("/sockjs/info", s.sockjsInfo)
}

// sockjsInfo is SockJS' /info: websocket supported, any origin, no cookie.
func (s *Surface) sockjsInfo(c *gin.Context) {
	c.Header("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	c.Header("Access-Control-Allow-Origin", "*")
	entropy := time.Now().UnixNano() & 0x7fffffff
	c.Data(http.StatusOK, "application/json; charset=UTF-8",
		[]byte(`{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":`+strconv.FormatInt(entropy, 10)+`}`))
}

// runDDP waits for ctx to end, then closes every session (going away) and
// returns once all are closed. Sockets are accepted from New on; after
// runDDP returns new ones are refused.
func (s *Surface) runDDP(ctx context.Context) error {
	st := &s.ddp
	st.mu.Lock()
	if st.running || st.stopped {
		st.mu.Unlock()
		return errors.New("rocketchat: Run called twice")
	}
	st.running = true
	st.mu.Unlock()

	s.pollRooms(ctx) // until ctx ends

	st.mu.Lock()
	st.stopped = true
	live := make([]*ddpSession, 0, len(st.sessions))
	for ss := range st.sessions {
		live = append(live, ss)
	}
	st.mu.Unlock()
	for _, ss := range live {
		ss.conn.Close(wsconn.ReasonGoingAway)
	}
	st.wg.Wait()
	st.drains.Close()
	return nil
}

func (s *Surface) serveDDP(sockjs bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ws, err := wsconn.Upgrade(&s.ddp.upgrader, c.Writer, c.Request, nil)
		if err != nil {
			return // the upgrader has answered with an HTTP error
		}
		conn := wsconn.New(ws, wsconn.Options{
			SendQueue:   ddpSendQueue,
			ReadTimeout: s.ddp.heartbeat + s.ddp.heartbeatTimeout + 5*time.Second,
			ReadLimit:   int64(max(s.cfg.MaxFrame, ddpHardFrameCap)),
		})
		ss := s.newDDPSession(conn, sockjs, c.Request)
		if !s.trackDDP(ss) {
			conn.Close(wsconn.ReasonGoingAway)
			_ = conn.Wait(c.Request.Context())
			return
		}
		// The session runs on a goroutine of its own and the handler
		// returns: the handler's stack, grown deep by the router and the
		// upgrade, is not held for the life of an idle socket. The
		// request's context ends with the handler; shutdown reaches the
		// session through runDDP (tracked above). Detach keeps only the
		// client address and exemption the rate limits read, not the
		// whole request context (about a kilobyte per idle socket).
		ctx := ratelimit.Detach(c.Request.Context())
		go func() {
			defer s.untrackDDP(ss)
			ss.run(ctx)
		}()
	}
}

func (s *Surface) trackDDP(ss *ddpSession) bool {
	st := &s.ddp
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return false
	}
	st.sessions[ss] = struct{}{}
	st.wg.Add(1)
	if s.cfg.OnConnections != nil {
		s.cfg.OnConnections(1)
	}
	return true
}

func (s *Surface) untrackDDP(ss *ddpSession) {
	st := &s.ddp
	st.mu.Lock()
	delete(st.sessions, ss)
	if s.cfg.OnConnections != nil {
		s.cfg.OnConnections(-1)
	}
	st.mu.Unlock()
	st.wg.Done()
}

// bindToken records a connection bound to a visitor token
// (livechat:setUpConnection) and marks the visitor online.
func (s *Surface) bindToken(ctx context.Context, token string) {
	s.ddp.mu.Lock()
	s.ddp.bound[token]++
	s.ddp.mu.Unlock()
	if v, err := s.visitorByToken(ctx, token); err == nil {
		s.rest.presence.Store(v.ID, "online")
	}
}

// unbindToken undoes bindToken when the connection closes: the last one of
// a token marks its visitor offline, as Rocket.Chat's onClose hook does
// (Livechat.notifyGuestStatusChanged(token, 'offline')).
func (s *Surface) unbindToken(ctx context.Context, token string) {
	s.ddp.mu.Lock()
	s.ddp.bound[token]--
	last := s.ddp.bound[token] <= 0
	if last {
		delete(s.ddp.bound, token)
	}
	s.ddp.mu.Unlock()
	if !last {
		return
	}
	if v, err := s.visitorByToken(ctx, token); err == nil {
		s.rest.presence.Store(v.ID, "offline")
	}
}

// ddpConnected reports whether a visitor has a DDP connection bound by
// livechat:setUpConnection (for tests and diagnostics).
func (s *Surface) ddpConnected(token string) bool {
	s.ddp.mu.Lock()
	defer s.ddp.mu.Unlock()
	return s.ddp.bound[token] > 0
}
