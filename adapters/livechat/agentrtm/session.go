package agentrtm

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/wsconn"
	"chatgate/adapters/livechat/wire"
)

// agent_disconnected reasons chatgate sends (§2.8).
const (
	reasonByServer = "agent_disconnected_by_server"
	reasonTimeout  = "connection_timeout"
	reasonInternal = "internal_error"
)

// session is the websocket side of one connection: it reads frames and
// hands them to its client one at a time (requests of one connection are
// answered in order, which keeps an agent's messages in the order sent),
// and runs the client's push pump once it has logged in.
type session struct {
	s    *Surface
	conn *wsconn.Conn
	c    *client
	log  zerolog.Logger
}

func (s *Surface) newSession(conn *wsconn.Conn, version string) *session {
	ss := &session{s: s, conn: conn}
	ss.c = s.newClient(version, conn.Send, ss.disconnect)
	ss.log = s.log.With().Str("conn", ss.c.id).Str("remote", conn.RemoteAddr().String()).Logger()
	return ss
}

// disconnect tells the agent why (§2.2: the *_disconnected push, then
// close) and closes the socket after what is already queued.
func (ss *session) disconnect(reason string) {
	if f, err := wire.Encode(wire.NewPush(ss.c.version, "", "agent_disconnected", map[string]string{"reason": reason})); err == nil {
		_ = ss.conn.Send(f)
	}
	code := websocket.ClosePolicyViolation
	switch reason {
	case reasonByServer:
		code = websocket.CloseGoingAway
	case reasonInternal:
		code = websocket.CloseInternalServerErr
	}
	ss.conn.Close(wsconn.Reason{Code: code, Text: reason})
}

// run serves the socket until it closes or ctx ends.
func (ss *session) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var pumps sync.WaitGroup
	defer func() {
		ss.c.logout()
		cancel()
		pumps.Wait()
		ss.conn.Close(wsconn.ReasonNormal)
		<-ss.conn.Done() // bounded by the write timeout
		ss.log.Debug().Err(ss.conn.Err()).Msg("agent rtm session closed")
	}()
	login := time.AfterFunc(ss.s.cfg.LoginTimeout, func() {
		if !ss.c.loggedIn.Load() {
			ss.conn.Close(wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "login timeout"})
		}
	})
	defer login.Stop()

	pumping := false
	for {
		frame, err := ss.conn.Read(ctx)
		if err != nil {
			ss.readFailed(err)
			return
		}
		if err := ss.c.serve(ctx, frame); err != nil {
			return
		}
		if !pumping && ss.c.loggedIn.Load() {
			pumping = true
			sub := ss.c.sub
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				ss.c.pump(ctx, sub)
			}()
		}
	}
}

func (ss *session) readFailed(err error) {
	switch {
	case errors.Is(err, wsconn.ErrReadTimeout):
		if ss.c.loggedIn.Load() {
			ss.disconnect(reasonTimeout)
		} else {
			ss.conn.Close(wsconn.ReasonTimeout)
		}
	case errors.Is(err, wsconn.ErrTooBig):
		ss.conn.Close(wsconn.ReasonTooBig)
	default:
		ss.conn.Close(wsconn.ReasonNormal)
	}
	ss.log.Debug().Err(err).Msg("agent rtm read ended")
}
