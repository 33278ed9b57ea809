package rtmconn

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/gopool"
	"chatgate/adapters/internal/subdrain"
	"chatgate/adapters/internal/wsconn"
	"chatgate/core/ratelimit"
)

// Sessions is a surface's registry of live sessions: it serves websocket
// upgrades and, in Run, disconnects them all when the server stops, so
// that the surface's Run returns only once every socket is closed.
type Sessions struct {
	kind     Kind
	name     string // the surface, for errors
	log      zerolog.Logger
	upgrader websocket.Upgrader
	opts     wsconn.Options
	onConns  func(delta int) // may be nil
	// drains runs every session's push drains (subdrain.Pool): a busy
	// surface's drains run on a few goroutines whose stacks have grown,
	// instead of a fresh one per burst of pushes. Closed by Run.
	drains *subdrain.Pool
	// serves runs every session's requests after login (gopool, see
	// serveLinger). Closed by Run.
	serves *gopool.Pool

	mu      sync.Mutex
	stopped bool
	running bool
	live    map[*Session]struct{}
	wg      sync.WaitGroup // live sessions
}

// NewSessions returns an empty registry. name prefixes errors, log is the
// surface's logger, opts configures each socket, and onConns (optional) is
// told of every socket accepted (+1) and ended (-1).
func NewSessions(name string, kind Kind, log zerolog.Logger, opts wsconn.Options, onConns func(int)) *Sessions {
	return &Sessions{
		kind: kind, name: name, log: log, opts: opts, onConns: onConns,
		live: make(map[*Session]struct{}), drains: subdrain.NewPool(drainLinger),
		serves: gopool.New(serveLinger),
		// Apps and widgets run on their own origins, and the socket
		// carries no ambient credential (the token comes in the login
		// frame), so a cross-site page gains nothing by opening one.
		// Held connections are mostly idle: a small read buffer, and a
		// write buffer borrowed from a pool only while writing.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true },
			ReadBufferSize: cmp.Or(kind.ReadBuffer, 1024), WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}},
	}
}

// Run waits for ctx to end, then disconnects every session with the
// kind's Shutdown reason and returns once all of them are closed. Sessions
// are accepted before Run too; after Run returns new sockets are refused.
func (r *Sessions) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running || r.stopped {
		r.mu.Unlock()
		return errors.New(r.name + ": Run called twice")
	}
	r.running = true
	r.mu.Unlock()

	<-ctx.Done()

	r.mu.Lock()
	r.stopped = true
	live := make([]*Session, 0, len(r.live))
	for ss := range r.live {
		live = append(live, ss)
	}
	r.mu.Unlock()
	for _, ss := range live {
		ss.Disconnect(r.kind.Shutdown)
	}
	r.wg.Wait()
	r.drains.Close()
	r.serves.Close()
	return nil
}

// Serve upgrades one request to a websocket and serves it until it ends.
// newClient builds the connection's client around send (the socket's
// bounded queue) and bye (the session's Disconnect); refuse, if set, names the reason to turn the socket away
// with ("" accepts it), for checks of the URL such as the organization.
func (r *Sessions) Serve(w http.ResponseWriter, req *http.Request, version string,
	newClient func(send func([]byte) error, bye func(string)) Client, refuse func(*http.Request) string) {
	ws, err := wsconn.Upgrade(&r.upgrader, w, req, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	conn := wsconn.New(ws, r.opts)
	ss := NewSession(conn, r.kind, version)
	ss.drains, ss.serves = r.drains, r.serves
	c := newClient(conn.Send, ss.Disconnect)
	if !r.track(ss) {
		ss.Disconnect(r.kind.Shutdown)
		_ = conn.Wait(req.Context())
		return
	}
	if refuse != nil {
		if reason := refuse(req); reason != "" {
			defer r.untrack(ss)
			ss.Disconnect(reason)
			_ = conn.Wait(req.Context())
			return
		}
	}
	// The connection's logger is made when something is logged: a held
	// socket would otherwise keep zerolog's context buffer (500 bytes).
	log := func() zerolog.Logger {
		return r.log.With().Str("conn", c.ID()).Str("remote", conn.RemoteAddr().String()).Logger()
	}
	// The session runs on a goroutine of its own and the HTTP handler
	// returns: the handler's stack, grown deep by the router and the
	// upgrade, is not held for the life of an idle socket. The request's
	// context ends with the handler, so the session keeps the request's
	// rate-limit values only (ratelimit.Detach: the request context
	// itself would stay reachable, a kilobyte a socket); shutdown
	// reaches it through Disconnect (tracked above).
	ctx := ratelimit.Detach(req.Context())
	go func() {
		defer r.untrack(ss)
		ss.Run(ctx, c, log)
	}()
}

func (r *Sessions) track(ss *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.live[ss] = struct{}{}
	r.wg.Add(1)
	if r.onConns != nil {
		r.onConns(1)
	}
	return true
}

func (r *Sessions) untrack(ss *Session) {
	r.mu.Lock()
	delete(r.live, ss)
	if r.onConns != nil {
		r.onConns(-1)
	}
	r.mu.Unlock()
	r.wg.Done()
}
