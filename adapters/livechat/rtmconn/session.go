package rtmconn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/gopool"
	"chatgate/adapters/internal/subdrain"
	"chatgate/adapters/internal/wsconn"
	"chatgate/adapters/livechat/wire"
)

// Reasons both surfaces send in their *_disconnected push.
const (
	ReasonTimeout  = "connection_timeout"
	ReasonInternal = "internal_error"
)

// Kind is what tells one surface's sessions from another's.
type Kind struct {
	// Name prefixes log messages ("agent rtm").
	Name string
	// Disconnected is the push sent before closing ("agent_disconnected").
	Disconnected string
	// Shutdown is the reason sent when the server goes away; it closes
	// with 1001 so that clients reconnect.
	Shutdown string
	// LoginTimeout closes a socket that has not logged in by then.
	LoginTimeout time.Duration
	// InFlight bounds the requests of one logged-in connection served at
	// once when its Client is Keyed; 0 or 1 serves them one at a time.
	InFlight int
	// ReadBuffer is the size of each socket's read buffer (default
	// 1024), which a socket keeps for as long as it is open. Frames
	// larger than it are read straight into the message; a smaller one
	// costs a read(2) more for such frames and saves memory per held
	// socket: customers send a small frame at a time, agents batches.
	ReadBuffer int
}

// Client is one connection's protocol state as a Session drives it.
type Client interface {
	// ID names the connection in logs.
	ID() string
	// Serve answers one request frame (response first, then the pushes it
	// caused); an error means the socket is gone.
	Serve(ctx context.Context, frame []byte) error
	LoggedIn() bool
	// Started is called once, on the reader goroutine, after the first
	// request that left the client logged in. The session runs pump (if
	// not nil) on its own goroutine until the session ends, then calls
	// stop (if not nil). A Pusher's pushes are delivered on demand
	// instead (see Pusher), and its pump is not run.
	Started() (pump func(context.Context), stop func())
	// Logout undoes login; it is called when the session ends.
	Logout()
}

// Session is the websocket side of one connection: it reads frames and
// hands them to its client, and runs the client's push pump once it has
// logged in. Until then requests are served one at a time; afterwards a
// Keyed client's requests are pipelined (Kind.InFlight at once, requests
// of one key in order, see Keyed), others' stay one at a time.
type Session struct {
	kind    Kind
	conn    *wsconn.Conn
	version string
	drains  *subdrain.Pool // runs the pushes' drains; nil: a goroutine per drain
	serves  *gopool.Pool   // runs the requests after login; nil: a goroutine per request
}

// NewSession wraps conn; version is the connection's API version.
func NewSession(conn *wsconn.Conn, kind Kind, version string) *Session {
	return &Session{kind: kind, conn: conn, version: version}
}

// Disconnect tells the client why (§2.2: the *_disconnected push, then
// close) and closes the socket after what is already queued. It is the
// client's bye.
func (ss *Session) Disconnect(reason string) {
	if f, err := wire.Encode(wire.NewPush(ss.version, "", ss.kind.Disconnected, map[string]string{"reason": reason})); err == nil {
		_ = ss.conn.Send(f)
	}
	code := websocket.ClosePolicyViolation
	switch reason {
	case ss.kind.Shutdown:
		code = websocket.CloseGoingAway
	case ReasonInternal:
		code = websocket.CloseInternalServerErr
	}
	ss.conn.Close(wsconn.Reason{Code: code, Text: reason})
}

// Run serves the socket for c until it closes or ctx ends. log names the
// connection; it is called only when something is logged, so that a held
// socket does not keep a logger of its own (zerolog's context buffer).
//
// The goroutine that runs Run is the socket's reader for the life of the
// connection, and does nothing else: requests are served on another
// goroutine (see offload), so that an idle connection's reader keeps the
// small stack reading takes.
func (ss *Session) Run(ctx context.Context, c Client, log func() zerolog.Logger) {
	base := ctx
	ctx, cancel := context.WithCancel(ctx)
	var pumps sync.WaitGroup
	var stop func()
	var pl *pipeline
	var broken atomic.Bool // a pipelined request found the socket gone
	var drain *subdrain.Drainer
	off := newOffload(c.Serve, ss.serves)
	defer func() {
		if pl != nil {
			pl.wait() // before Logout: requests in flight still act as the agent
		}
		if stop != nil {
			stop()
		}
		c.Logout()
		cancel()
		if drain != nil {
			drain.Stop()
		}
		pumps.Wait()
		ss.conn.Close(wsconn.ReasonNormal)
		<-ss.conn.Done() // bounded by the write timeout
		if l := log(); l.GetLevel() <= zerolog.DebugLevel {
			l.Debug().Err(ss.conn.Err()).Msg(ss.kind.Name + " session closed")
		}
	}()
	login := time.AfterFunc(ss.kind.LoginTimeout, func() {
		if !c.LoggedIn() {
			ss.conn.Close(wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "login timeout"})
		}
	})
	defer func() {
		if login != nil {
			login.Stop()
		}
	}()

	for {
		// Read watches base, which only its owner cancels: the session's
		// own ctx ends when Run returns, or through fail below, which
		// closes the socket itself.
		frame, err := ss.conn.Read(base)
		if err != nil {
			if !broken.Load() {
				ss.readFailed(c, err, log)
			}
			return
		}
		if pl != nil {
			if err := pl.submit(ctx, pl.key(frame), frame); err != nil {
				return
			}
			continue
		}
		// Requests served one at a time run under base: they are over
		// before the session's ctx is cancelled, and a request context
		// under the session's would make it keep a Done channel and a
		// map of children for as long as the socket is held.
		// A login runs on a goroutine of its own (see offload).
		if err := off.call(base, frame, login == nil); err != nil {
			return
		}
		if login != nil && c.LoggedIn() {
			login.Stop()
			login = nil
			var pump func(context.Context)
			pump, stop = c.Started()
			if p, ok := c.(Pusher); ok {
				drain = startDrainer(ctx, p, &pumps, ss.drains)
			} else if pump != nil {
				pumps.Add(1)
				go func() {
					defer pumps.Done()
					pump(ctx)
				}()
			}
			if k, ok := c.(Keyed); ok && ss.kind.InFlight > 1 {
				pl = newPipeline(ss.kind.InFlight, k.OrderKey, c.Serve, func() {
					broken.Store(true)
					cancel()
					ss.conn.Close(wsconn.ReasonGoingAway) // ends the Read
				}, ss.serves)
				pl.alone = func(ctx context.Context, frame []byte) error { return off.call(ctx, frame, true) }
			}
		}
	}
}

func (ss *Session) readFailed(c Client, err error, log func() zerolog.Logger) {
	switch {
	case errors.Is(err, wsconn.ErrReadTimeout):
		if c.LoggedIn() {
			ss.Disconnect(ReasonTimeout)
		} else {
			ss.conn.Close(wsconn.ReasonTimeout)
		}
	case errors.Is(err, wsconn.ErrTooBig):
		ss.conn.Close(wsconn.ReasonTooBig)
	default:
		ss.conn.Close(wsconn.ReasonNormal)
	}
	if l := log(); l.GetLevel() <= zerolog.DebugLevel {
		l.Debug().Err(err).Msg(ss.kind.Name + " read ended")
	}
}
