// Package agentrtm serves LiveChat's Agent Chat API (v3.5, also reached as
// v3.4 and v3.6) so that agent apps can serve chats held by chatgate's
// core, over the RTM websocket and the Web API (POST
// /v3.x/agent/action/<action>, webapi.go) with one handler per action:
// login and ping (RTM only), set_routing_status, list_chats, get_chat,
// list_threads, list_archives, send_event (message, custom, file,
// system_message), deactivate_chat, send_typing_indicator, transfer_chat,
// get_customer, update_customer, list_routing_statuses,
// list_agents_for_transfer, mark_events_as_seen, multicast, logout, and
// upload_file (Web API only); and the pushes agents need (incoming_chat,
// incoming_event, chat_deactivated, chat_transferred, routing_status_set,
// customer_updated, events_marked_as_seen, incoming_multicast, typing).
//
// Handlers are wire.Handler[*caller] (caller.go): the authenticated agent
// and the request's payload in, a payload or an error out; the transports
// only build the caller and frame the result.
//
// Layers: surface.go mounts routes and plugs the surface into package rtmconn,
// which owns sockets, the websocket loop and shutdown; client.go is one connection's protocol state, free of transport, so
// tests and the fuzzer drive it directly; actions*.go hold one handler per
// action in a wire.Table; pushes.go turns core notices into pushes.
//
// Order: on one connection, requests about one chat are served and
// answered in the order sent; requests about different chats may be in
// flight together (up to Config.InFlight) and answered in any order, matched by
// their request_id as LiveChat clients do; any other request is served
// alone, after everything sent before it. A request's response always
// precedes the pushes it causes there (those carry its request_id, §2.2).
//
// Visibility: an agent sees the conversations it serves and the queued ones
// of departments it serves; everything else answers not_found, so that ids
// of other agents' chats do not leak.
package agentrtm

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/adapters/internal/wsconn"
	"chatgate/adapters/livechat/rtmconn"
	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
)

// versions lists the API versions the surface answers on, oldest first;
// the handlers are the same (the v3.4 and v3.6 deltas in §2.10 are additive
// for these actions).
func versions() []string { return []string{"3.4", "3.5", "3.6"} }

// Surface is the agent RTM surface.
type Surface struct {
	d        *desk.Desk
	cfg      Config
	log      zerolog.Logger
	src      wire.Source
	actions  wire.Table[*caller]
	sessions *rtmconn.Sessions
	created  time.Time
	// clients finds an agent's logged-in connections on this node.
	clients rtmconn.Registry[model.AgentID, *client]
}

// New returns the surface; Mount its routes, then Run it.
func New(d *desk.Desk, cfg Config, log zerolog.Logger) *Surface {
	s := &Surface{
		d: d, cfg: cfg.withDefaults(), log: log.With().Str("surface", "livechat.agent.rtm").Logger(),
		created: d.Now(),
		src:     wire.SourceOf(d),
	}
	s.sessions = rtmconn.NewSessions("agentrtm", rtmconn.Kind{
		Name: "agent rtm", Disconnected: "agent_disconnected", Shutdown: reasonByServer,
		LoginTimeout: s.cfg.LoginTimeout, InFlight: s.cfg.InFlight,
	}, s.log, wsconn.Options{
		SendQueue:   s.cfg.SendQueue,
		ReadTimeout: s.cfg.PingTimeout,
		ReadLimit:   s.cfg.readLimit(),
	}, s.cfg.OnConnections)
	s.actions = s.table()
	return s
}

// Name identifies the surface.
func (s *Surface) Name() string { return "livechat.agent.rtm" }

// Dispatched lists what the surface dispatches below its gin routes, as
// "action <name>" (RTM and Web API share the table; upload_file is Web
// only). Tests check every entry against their authorization matrix.
func (s *Surface) Dispatched() []string { return s.actions.Dispatched("upload_file") }

// Mount registers GET /v3.{4,5,6}/agent/rtm/ws. The organization_id query
// parameter is optional (lc-sdk-js omits it for agents).
func (s *Surface) Mount(r gin.IRouter) {
	for _, v := range versions() {
		r.GET("/v"+v+"/agent/rtm/ws", s.serveWS(v))
		s.mountWeb(r, v)
	}
}

// Run waits for ctx to end, then disconnects every session with
// agent_disconnected{reason:"agent_disconnected_by_server"} and returns once
// all of them are closed. Sessions are accepted from New on; after Run
// returns new sockets are refused.
func (s *Surface) Run(ctx context.Context) error { return s.sessions.Run(ctx) }

func (s *Surface) serveWS(version string) gin.HandlerFunc {
	return func(g *gin.Context) {
		s.sessions.Serve(g.Writer, g.Request, version,
			func(send func([]byte) error, bye func(string)) rtmconn.Client { return s.newClient(version, send, bye) },
			func(r *http.Request) string {
				if org := r.URL.Query().Get("organization_id"); org != "" && s.cfg.OrganizationID != "" && org != s.cfg.OrganizationID {
					return "license_not_found"
				}
				return ""
			})
	}
}
