// Package rocketchat serves Rocket.Chat's omnichannel livechat API as
// Rocket.Chat 4.x does: the REST routes under /api/v1/ (rest*.go), the DDP
// realtime API at /websocket (ddp*.go) and the hosted widget at /livechat
// (widget*.go), so that the unmodified @rocket.chat/livechat widget and
// scripts written against Rocket.Chat work against chatgate.
//
// Ids: a room (rid) is a core conversation id; a visitor token is a foreign
// id in the store's mapping tables (System, Tenant, kind "token"); agent
// auth tokens are kept there too (kind "auth", by SHA-256), so sessions
// survive restarts; a message _id is the client's own id when it chose one
// (kept as the event's ClientKey and idempotency key), else the event id.
package rocketchat

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store/files"
)

// System is the mapping-table namespace of Rocket.Chat foreign ids.
const System = "rocketchat"

// Mapping kinds under System.
const (
	KindToken = "token" // visitor token -> visitor id
	KindAuth  = "auth"  // sha256(agent auth token) -> agent id
)

// Config configures the surface.
type Config struct {
	// Tenant names this Rocket.Chat face in the mapping tables.
	Tenant string
	// PublicURL is injected into the widget page as SERVER_URL; empty means
	// derived from each request's scheme and Host.
	PublicURL string
	// WidgetDir holds the @rocket.chat/livechat build (index.html, assets).
	WidgetDir string
	// Files stores uploads (livechat/upload/:rid).
	Files *files.Store
	// Login checks an agent's username (or id) and password for
	// POST /api/v1/login.
	Login func(user, password string) (model.AgentID, bool)
	// MaxBody caps REST request bodies (bytes); MaxFrame caps DDP frames.
	MaxBody  int64
	MaxFrame int
	// QueueMessage is the text of queueInfo's waiting message
	// (Rocket.Chat's Livechat_waiting_queue_message); QueueWaitPerChat,
	// when > 0, makes queueInfo estimate the wait as spot × it.
	QueueMessage     string
	QueueWaitPerChat time.Duration
	// Mail, if set, sends livechat/transcript e-mails and forwards
	// offline messages (email.go); nil: both answer as without e-mail.
	Mail Mailer
	// OfflineEmail is the default address of offline messages
	// (Livechat_offline_email); DepartmentEmails a department's own.
	OfflineEmail     string
	DepartmentEmails map[model.DeptID]string
	// CustomFields are the livechat custom field definitions;
	// RoomFieldNamespace the property namespace of room-scope values
	// (declared as thread properties by the configuration).
	CustomFields       []CustomField
	RoomFieldNamespace string
	// OnConnections, if set, is told of DDP connections opening (+1) and
	// closing (-1), for metrics.
	OnConnections func(delta int)
	// Uploads limits uploads per visitor; NewVisitors the visitors
	// registered per client address (ratelimit.AddrFrom). Nil: no limit.
	Uploads, NewVisitors *ratelimit.Keyed
	// TrustForwarded reports whether a request came from a trusted proxy
	// (server.trusted_proxies), whose X-Forwarded-Proto is believed; nil
	// believes none.
	TrustForwarded func(*http.Request) bool
}

// Surface is the Rocket.Chat livechat face.
type Surface struct {
	d   *desk.Desk
	cfg Config
	log zerolog.Logger

	fields map[string]*fieldDef // custom field definitions by id

	rest   restState
	ddp    ddpState
	widget widgetState
}

// New returns the surface.
func New(d *desk.Desk, cfg Config, log zerolog.Logger) *Surface {
	if cfg.Tenant == "" {
		cfg.Tenant = "default"
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 64 << 10
	}
	if cfg.RoomFieldNamespace == "" {
		cfg.RoomFieldNamespace = "rocketchat_custom_fields"
	}
	s := &Surface{d: d, cfg: cfg, log: log.With().Str("surface", System).Logger()}
	if err := s.initFields(); err != nil {
		// The configuration validates regexps first; a definition that
		// still fails is dropped rather than panicking.
		s.log.Error().Err(err).Msg("custom field definitions")
	}
	s.initREST()
	s.initDDP()
	s.initWidget()
	return s
}

// Name implements the gateway's Surface.
func (s *Surface) Name() string { return System }

// Mount registers every route of the surface.
func (s *Surface) Mount(r gin.IRouter) {
	s.mountREST(r)
	s.mountDDP(r)
	s.mountWidget(r)
}

// Dispatched lists what the surface dispatches below its gin routes:
// "rest <METHOD> <path>" for the /api/v1 table, "method <name>" and
// "sub <name>" for DDP. Tests check every entry against their
// authorization matrix.
func (s *Surface) Dispatched() []string {
	var out []string
	for _, rt := range s.rest.routes {
		out = append(out, "rest "+rt.method+" "+strings.Join(rt.segs, "/"))
	}
	for n := range ddpMethods {
		out = append(out, "method "+n)
	}
	for _, n := range []string{streamRoomMessages, streamNotifyRoom, streamLivechatRoom} {
		out = append(out, "sub "+n)
	}
	sort.Strings(out)
	return out
}

// Run owns the DDP sessions; it returns after ctx ends and they are closed.
func (s *Surface) Run(ctx context.Context) error {
	return s.runDDP(ctx)
}
