package agentrtm

import (
	"time"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/store/files"
)

// Config configures the agent RTM surface.
type Config struct {
	// LicenseID and OrganizationID are reported in the login response. A
	// connection whose organization_id query parameter names another
	// organisation is disconnected with reason license_not_found.
	LicenseID, OrganizationID string
	// Forms are the configured pre-chat, post-chat and ticket forms
	// (get_form; a filled_form naming one gets its form_type). Nil: none.
	Forms *wire.Forms
	// Authenticate maps an RTM login token (without the "Bearer " prefix)
	// to a configured agent; constant-time compare is the caller's job.
	// Nil refuses every login.
	Authenticate func(token string) (model.AgentID, bool)
	// LoginTimeout closes sockets that do not log in (default 30s, §2.2).
	LoginTimeout time.Duration
	// PingTimeout: after this long without any frame or pong the agent gets
	// agent_disconnected{reason:"connection_timeout"} and the socket is
	// closed (default 30s). The server sends control pings every half of
	// it, which browsers answer without the app's help.
	PingTimeout time.Duration
	// MaxFrame is the largest request handled (default 64 KiB). A bigger
	// frame is answered with an entity_too_large error and the session
	// goes on; a frame above max(MaxFrame, 1 MiB) closes the socket with
	// 1009 (the server does not even read it).
	MaxFrame int
	// SendQueue bounds the frames waiting to be written to one socket
	// (default 1024); a client that lets it fill is disconnected. An agent
	// session carries the pushes of every chat the agent serves plus, with
	// up to InFlight requests answered at once, their responses and the
	// pushes they cause: 256 cut busy agents off in bursts.
	SendQueue int
	// InFlight bounds the requests of one logged-in connection served at
	// once (default 64); requests about one chat always run in order, and
	// 1 serves every request one at a time.
	InFlight int
	// Files stores Web API upload_file uploads (nil: uploads refused).
	// Its MaxSize is the upload limit.
	Files *files.Store
	// Logins throttles failed RTM logins per client address
	// (ratelimit.AddrFrom of the upgrade request); nil: no throttle.
	Logins *ratelimit.Keyed
	// PublicURL, if set, is the base of the URLs upload_file returns
	// (else the request's scheme and Host).
	PublicURL string
	// OnConnections, if set, is told +1/-1 as sockets open and close (for
	// a Prometheus gauge).
	OnConnections func(delta int)
}

const (
	defaultLoginTimeout = 30 * time.Second
	defaultPingTimeout  = 30 * time.Second
	defaultMaxFrame     = 64 << 10
	defaultSendQueue    = 1024
	// hardFrameCap is where the socket's read limit sits: frames above it
	// are never buffered.
	hardFrameCap = 1 << 20
	// requestTimeout bounds one request, as LiveChat does (§2.2: 15 s,
	// request_timeout).
	requestTimeout = 15 * time.Second
	// defaultInFlight bounds the requests of one connection served at
	// once (rtmconn.Kind.InFlight): enough for an agent app to have a
	// reply in every store commit for dozens of chats, and small against
	// the send queue, which also carries each request's response and
	// pushes.
	defaultInFlight = 64
	// minDeskQueue is the least notices a session's desk subscription
	// holds: it receives every conversation's notices, not just its own.
	minDeskQueue = 1024
)

func (c Config) withDefaults() Config {
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
	if c.InFlight <= 0 {
		c.InFlight = defaultInFlight
	}
	return c
}

func (c Config) readLimit() int64 { return int64(max(c.MaxFrame, hardFrameCap)) }

func (c Config) deskQueue() int { return max(4*c.SendQueue, minDeskQueue) }
