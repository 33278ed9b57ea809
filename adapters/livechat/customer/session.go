package customer

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

// customer_disconnected reasons chatgate sends (§2.6).
const (
	reasonShutdown = "service_temporarily_unavailable"
	reasonTimeout  = "connection_timeout"
	reasonInternal = "internal_error"
	reasonLicense  = "license_not_found"
	reasonExpired  = "access_token_expired"
)

// session is one websocket: it reads frames and hands them to its client
// one at a time, and runs the client's push pump once logged in.
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

// disconnect sends customer_disconnected{reason} and closes after what is
// queued (§2.2).
func (ss *session) disconnect(reason string) {
	if f, err := wire.Encode(wire.NewPush(ss.c.version, "", "customer_disconnected", map[string]string{"reason": reason})); err == nil {
		_ = ss.conn.Send(f)
	}
	code := websocket.ClosePolicyViolation
	switch reason {
	case reasonShutdown:
		code = websocket.CloseGoingAway
	case reasonInternal:
		code = websocket.CloseInternalServerErr
	}
	ss.conn.Close(wsconn.Reason{Code: code, Text: reason})
}

func (ss *session) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var pumps sync.WaitGroup
	defer func() {
		ss.c.logout()
		cancel()
		pumps.Wait()
		ss.conn.Close(wsconn.ReasonNormal)
		<-ss.conn.Done()
		ss.log.Debug().Err(ss.conn.Err()).Msg("customer rtm session closed")
	}()
	login := time.AfterFunc(ss.s.cfg.LoginTimeout, func() {
		if !ss.c.loggedIn.Load() {
			ss.conn.Close(wsconn.Reason{Code: websocket.ClosePolicyViolation, Text: "login timeout"})
		}
	})
	defer login.Stop()
	var expiry *time.Timer
	defer func() {
		if expiry != nil {
			expiry.Stop()
		}
	}()

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
			// The token is checked at login; the session ends when it
			// expires, as LiveChat's does (access_token_expired).
			expiry = time.AfterFunc(max(ss.c.expires.Sub(ss.s.now()), 0), func() { ss.c.bye(reasonExpired) })
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
	ss.log.Debug().Err(err).Msg("customer rtm read ended")
}
