// Package customer serves LiveChat's Customer Chat API v3.5 (also reached
// as v3.4 and v3.6) over chatgate's core, so that LiveChat customer apps
// and @livechat/customer-sdk can chat with chatgate's agents:
//
//   - POST /v2/customer/token: customer access tokens (accounts-style,
//     grants cookie and agent_token), stored durably (tokens.go);
//   - GET /v3.x/customer/rtm/ws?organization_id=…: the RTM API (session.go,
//     client.go, actions*.go, pushes.go);
//   - POST /v3.x/customer/action/<action>?organization_id=…: the Web API,
//     sharing one handler per action with RTM, plus upload_file (web.go);
//   - GET /v3.x/customer/action/<action>?organization_id=…: the GET
//     configuration actions, without a token (config_actions.go).
//
// IDs follow package wire: customer id = chat id = core visitor id, thread
// id = conversation id, event id = "<thread>_<seq>". A customer sees only
// its own chat; any other chat id answers not_found. Agents-only events
// never reach customers.
package customer

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

func versions() []string { return []string{"3.4", "3.5", "3.6"} }

// Surface is the customer surface (RTM, Web API, tokens).
type Surface struct {
	d        *desk.Desk
	cfg      Config
	log      zerolog.Logger
	src      wire.Source
	actions  wire.Table[*client]
	sessions *rtmconn.Sessions
	// clients finds a customer's logged-in connections on this node.
	clients rtmconn.Registry[model.VisitorID, *client]
}

// New returns the surface; Mount its routes, then Run it.
func New(d *desk.Desk, cfg Config, log zerolog.Logger) *Surface {
	s := &Surface{
		d: d, cfg: cfg.withDefaults(), log: log.With().Str("surface", "livechat.customer").Logger(),
		src: wire.SourceOf(d),
	}
	if s.cfg.Now == nil {
		s.cfg.Now = d.Now
	}
	s.sessions = rtmconn.NewSessions("customer", rtmconn.Kind{
		Name: "customer rtm", Disconnected: "customer_disconnected", Shutdown: reasonShutdown,
		LoginTimeout: s.cfg.LoginTimeout,
		// A request frame at a time, most under 512 bytes (a message, a
		// sneak peek, a ping); login with a customer profile may be
		// larger and takes a read(2) more.
		ReadBuffer: 512,
	}, s.log, wsconn.Options{SendQueue: s.cfg.SendQueue, ReadTimeout: s.cfg.PingTimeout,
		ReadLimit: s.cfg.readLimit()}, s.cfg.OnConnections)
	s.actions = s.table()
	return s
}

// Name identifies the surface.
func (s *Surface) Name() string { return "livechat.customer" }

// Dispatched lists what the surface dispatches below its gin routes, as
// "action <name>" (RTM and Web API share the table; upload_file is Web
// only). Tests check every entry against their authorization matrix.
func (s *Surface) Dispatched() []string { return s.actions.Dispatched("upload_file") }

// Mount registers the token endpoint, GET /v3.{4,5,6}/customer/rtm/ws,
// POST /v3.{4,5,6}/customer/action/:action (OPTIONS too, for CORS) and GET
// on the same path for the GET actions (config_actions.go).
func (s *Surface) Mount(r gin.IRouter) {
	r.POST("/v2/customer/token", s.serveToken)
	r.OPTIONS("/v2/customer/token", s.preflight)
	for _, v := range versions() {
		r.GET("/v"+v+"/customer/rtm/ws", s.serveWS(v))
		r.POST("/v"+v+"/customer/action/:action", s.serveAction(v))
		r.GET("/v"+v+"/customer/action/:action", s.serveGet(v))
		r.OPTIONS("/v"+v+"/customer/action/:action", s.preflight)
	}
}

// Run waits for ctx to end, then disconnects every session with
// customer_disconnected{reason:"service_temporarily_unavailable"} (the SDK
// reconnects) and returns once all are closed.
func (s *Surface) Run(ctx context.Context) error { return s.sessions.Run(ctx) }

// orgOK checks ?organization_id= (v3.4+) or the legacy ?license_id=.
func (s *Surface) orgOK(r *http.Request) bool {
	q := r.URL.Query()
	if org := q.Get("organization_id"); org != "" {
		return s.cfg.OrganizationID == "" || org == s.cfg.OrganizationID
	}
	if lic := q.Get("license_id"); lic != "" {
		return lic == s.cfg.LicenseID
	}
	return false
}

func (s *Surface) serveWS(version string) gin.HandlerFunc {
	return func(g *gin.Context) {
		s.sessions.Serve(g.Writer, g.Request, version,
			func(send func([]byte) error, bye func(string)) rtmconn.Client { return s.newClient(version, send, bye) },
			func(r *http.Request) string {
				if !s.orgOK(r) {
					return reasonLicense
				}
				return ""
			})
	}
}

// now is the surface clock.
func (s *Surface) now() time.Time { return s.cfg.Now() }
