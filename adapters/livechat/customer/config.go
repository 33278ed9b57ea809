package customer

import (
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store/files"
)

// Config configures the customer surface.
type Config struct {
	// LicenseID and OrganizationID identify the one licence chatgate
	// serves. RTM sockets and Web API calls must name OrganizationID in
	// ?organization_id= (or LicenseID in ?license_id=).
	LicenseID, OrganizationID string
	// Forms are the configured pre-chat, post-chat and ticket forms
	// (get_form; a filled_form naming one gets its form_type). Nil: none.
	Forms *wire.Forms
	// AgentToken maps an agent bearer token to a configured agent: the
	// agent_token grant of POST /v2/customer/token. Nil disables that grant.
	AgentToken func(token string) (model.AgentID, bool)
	// AllowedOrigins are the browser origins (besides the gateway's own and
	// PublicURL's) granted credentialed CORS on the token endpoint and the
	// Web API: "https://shop.example.com", "https://*.example.com", or "*"
	// for any (unsafe on TLS: see cors.go). Default none.
	AllowedOrigins []string
	// ClientIDs, if not empty, are the only client_id values the token
	// endpoint accepts.
	ClientIDs []string
	// TokenTTL is the lifetime of customer access tokens (default 8h, as
	// LiveChat's expires_in 28800).
	TokenTTL time.Duration
	// Files stores upload_file uploads; nil answers upload_file with
	// service_unavailable.
	Files *files.Store
	// PublicURL prefixes uploaded files' URLs; empty: derived from each
	// request's scheme and Host.
	PublicURL string
	// LoginTimeout closes sockets that do not log in (default 30s, §2.2).
	LoginTimeout time.Duration
	// PingTimeout: a socket silent this long (no frame, no pong to the
	// server's control pings, sent every half of it) gets
	// customer_disconnected{reason:"connection_timeout"} (default 30s).
	// Customers need not send ping frames.
	PingTimeout time.Duration
	// MaxFrame is the largest request handled (default 64 KiB); bigger
	// ones get entity_too_large. It also bounds Web API bodies.
	MaxFrame int
	// SendQueue bounds one socket's outgoing frames (default 128).
	SendQueue int
	// Uploads limits upload_file per customer; NewCustomers limits the
	// customers cookie grants create, per client address
	// (ratelimit.AddrFrom). Nil: no limit.
	Uploads, NewCustomers *ratelimit.Keyed
	// OnConnections, if set, is told +1/-1 as sockets open and close.
	OnConnections func(delta int)
	// Now is the clock for token expiry (default the desk's clock).
	Now func() time.Time
}

const (
	defaultTokenTTL     = 8 * time.Hour
	defaultLoginTimeout = 30 * time.Second
	defaultPingTimeout  = 30 * time.Second
	defaultMaxFrame     = 64 << 10
	defaultSendQueue    = 128
	hardFrameCap        = 1 << 20
	requestTimeout      = 15 * time.Second
	minVisitorQueue     = 64
)

func (c Config) withDefaults() Config {
	if c.TokenTTL <= 0 {
		c.TokenTTL = defaultTokenTTL
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = defaultLoginTimeout
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = defaultPingTimeout
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = defaultMaxFrame
	}
	if c.SendQueue <= 0 {
		c.SendQueue = defaultSendQueue
	}
	return c
}

func (c Config) readLimit() int64 { return int64(max(c.MaxFrame, hardFrameCap)) }

// visitorQueue is the notice queue of a session's visitor subscription:
// only this customer's conversations feed it, a notice at a time per
// change (queues hold pointers: 8 bytes a slot).
func (c Config) visitorQueue() int { return max(c.SendQueue/2, minVisitorQueue) }
