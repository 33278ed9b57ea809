package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// Config configures a LiveChat connector.
type Config struct {
	// Name is the connector's name (routes refer to it).
	Name string
	// URL is the Customer Chat API host (https://api.livechatinc.com, or
	// another chatgate); the RTM socket is
	// <URL>/v<APIVersion>/customer/rtm/ws?organization_id=<OrganizationID>.
	URL            string
	OrganizationID string
	// APIVersion is the Customer Chat API version (default 3.5).
	APIVersion string
	// TokenURL is the customer token endpoint
	// (https://accounts.livechat.com/v2/customer/token).
	TokenURL string
	// AgentToken is the agent (or personal access) token the agent_token
	// grant presents. It is a credential: never logged.
	AgentToken string
	// ClientID is sent with token requests when set.
	ClientID string
	// Department is the LiveChat group id new chats go to ("" lets the
	// desk route).
	Department string
	// Client makes the token requests (its TLS settings also serve the
	// RTM sockets); nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds one request (token, RTM action, dial).
	Timeout time.Duration
	// ReconnectMin and ReconnectMax bound the wait before an RTM reconnect.
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often a socket sends the ping action: LiveChat
	// wants one every 15 s after login and closes a socket silent for
	// about 30 s (§2.2; platform.text.com/docs/messaging/
	// customer-chat-api/v3.5/rtm-reference, "Server pinging").
	PingInterval time.Duration
}

// Connector relays conversations into one LiveChat licence.
type Connector struct {
	cfg    Config
	rtmURL string
	group  *int
	log    zerolog.Logger

	// started is closed once Run has given the connector its context and
	// sink: followers live as long as Run.
	started chan struct{}
	runCtx  context.Context
	sink    *relay.Sink
	wg      sync.WaitGroup

	mu         sync.Mutex
	status     relay.Status
	tokenOK    bool
	stopped    bool
	reconnects int
	tokens     map[model.VisitorID]customerToken
	follows    map[model.ConvID]*follower

	// tokenLocks serialise token requests per visitor (sharded): two
	// first requests at once would make two customers upstream.
	tokenLocks [64]sync.Mutex
	// opening serialises opening a thread per visitor (sharded): a
	// customer's chat has one active thread, and two conversations of one
	// visitor (one closing, the next opening) must not race for it.
	opening [64]sync.Mutex
}

// New checks cfg and returns the connector.
func New(cfg Config, log zerolog.Logger) (*Connector, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("livechat connector %q: url %q must be http(s)://host[:port][/path]", cfg.Name, cfg.URL)
	}
	if t, err := url.Parse(cfg.TokenURL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" {
		return nil, fmt.Errorf("livechat connector %q: token_url %q must be an http(s) URL", cfg.Name, cfg.TokenURL)
	}
	if cfg.OrganizationID == "" || cfg.AgentToken == "" {
		return nil, fmt.Errorf("livechat connector %q: organization_id and agent_token are required", cfg.Name)
	}
	c := &Connector{log: log.With().Str("connector", cfg.Name).Logger(), started: make(chan struct{}),
		tokens: make(map[model.VisitorID]customerToken), follows: make(map[model.ConvID]*follower)}
	if cfg.Department != "" {
		g, err := strconv.Atoi(cfg.Department)
		if err != nil || g < 0 {
			return nil, fmt.Errorf("livechat connector %q: department %q must be a LiveChat group id (a number)", cfg.Name, cfg.Department)
		}
		c.group = &g
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = "3.5"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 250 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = max(cfg.ReconnectMin, 10*time.Second)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	ws := *u
	if ws.Scheme == "https" {
		ws.Scheme = "wss"
	} else {
		ws.Scheme = "ws"
	}
	ws = *ws.JoinPath("v"+cfg.APIVersion, "customer", "rtm", "ws")
	ws.RawQuery = url.Values{"organization_id": {cfg.OrganizationID}}.Encode()
	c.cfg, c.rtmURL = cfg, ws.String()
	return c, nil
}

// Name implements relay.Connector.
func (c *Connector) Name() string { return c.cfg.Name }

// Status implements relay.Connector: connected while every followed
// chat's socket is up, or, following none, while the token endpoint
// answers.
func (c *Connector) Status() relay.Status {
	c.mu.Lock()
	st := c.status
	st.Reconnects = c.reconnects
	st.Connected = c.tokenOK
	fs := make([]*follower, 0, len(c.follows))
	for _, f := range c.follows {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	if len(fs) > 0 {
		st.Connected = true
		for _, f := range fs {
			if !f.up() {
				st.Connected = false
			}
		}
	}
	return st
}

func (c *Connector) setError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.LastError, c.status.LastErrorAt = err.Error(), time.Now().UTC()
}

// Deliver implements relay.Connector.
func (c *Connector) Deliver(ctx context.Context, sink *relay.Sink, d relay.Delivery) error {
	var err error
	switch d.Op {
	case relay.OpOpen:
		_, err = c.open(ctx, sink, d.Conv, &d.Visitor)
	case relay.OpEvent:
		err = c.send(ctx, sink, d)
	case relay.OpClose:
		err = c.close(ctx, sink, d.Conv)
	default:
		return fmt.Errorf("%w: unknown op %q", relay.ErrPermanent, d.Op)
	}
	if err != nil {
		c.setError(err)
		if !transient(err) && !errors.Is(err, relay.ErrPermanent) {
			err = fmt.Errorf("%w: %w", relay.ErrPermanent, err)
		}
	}
	return err
}

// transient reports whether a retry may succeed: network trouble, a busy
// or unwell desk, a refused token (renewed on the next attempt), no agent
// online yet. Anything else LiveChat refuses (validation, not_found,
// customer_banned...) will be refused again.
func transient(err error) bool {
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.Type {
		case wire.Internal, wire.ServiceUnavailable, wire.RequestTimeout, wire.TooManyRequests,
			wire.Authentication, "pending_requests_limit_reached", "misdirected_request",
			"users_limit_reached", "group_offline", "groups_offline", "group_unavailable":
			return true
		}
		return false
	}
	var te *tokenError
	if errors.As(err, &te) {
		// 400: the request itself is wrong; anything else (a refused
		// agent token included) may be fixed upstream without a restart.
		return te.Status != http.StatusBadRequest
	}
	return true
}

func shard(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// roomID is the KindRoom foreign id of a conversation: the chat and the
// thread. A LiveChat customer keeps one chat across its conversations
// (each is a thread of it; resume_chat opens the next), so the chat id
// alone would bind several conversations; the pair is unique and still
// names the chat.
func roomID(chat, thread string) string { return chat + "/" + thread }

func splitRoom(room string) (chat, thread string, ok bool) {
	i := strings.LastIndexByte(room, '/')
	if i <= 0 || i == len(room)-1 {
		return "", "", false
	}
	return room[:i], room[i+1:], true
}

// isActiveChat reports whether LiveChat refused to start or resume a chat
// because the customer's chat already has an active thread (chatgate says
// validation "Chat is already active"; LiveChat's wording is not
// documented, §2.9, so the message is matched loosely).
func isActiveChat(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && (we.Type == wire.Validation || we.Type == wire.AlreadyExists || we.Type == "chat_active") &&
		strings.Contains(strings.ToLower(we.Message), "active")
}

// open makes sure the conversation has its upstream thread, followed. A
// bound thread is just followed. Otherwise the customer's chats decide
// (list_chats, newest thread first; resume_chat "restarts an archived
// chat" and deactivate_chat closes "the currently open thread", per
// platform.text.com/docs/messaging/customer-chat-api/v3.5/rtm-reference):
// an active chat whose thread is bound to no conversation is adopted (a
// crash came between start_chat and the bind); one bound to another
// conversation is stale (its close never got through) and is deactivated
// first; an inactive chat is resumed with a new thread (resume_chat, as
// the LiveChat widget does for a returning customer); a customer without
// chats starts one. Listing first, rather than trying start_chat and
// listing on refusal, also serves LiveChat itself, whose start_chat
// would open a second chat beside the one a crash left behind. The
// thread is bound (room, then thread) before anything uses it.
func (c *Connector) open(ctx context.Context, sink *relay.Sink, conv model.Conversation, v *model.Visitor) (*follower, error) {
	f, err := c.followerFor(ctx, conv, v)
	if err != nil {
		return nil, err
	}
	if room, err := sink.Link(ctx, relay.KindRoom, string(conv.ID)); err == nil {
		chat, thread, ok := splitRoom(room)
		if !ok {
			return nil, fmt.Errorf("%w: malformed upstream room %q", relay.ErrPermanent, room)
		}
		// A crash may have come between the two binds.
		if err := sink.Bind(ctx, relay.KindThread, string(conv.ID), thread); err != nil {
			return nil, err
		}
		f.setRoom(chat, thread)
		return f, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	mu := &c.opening[shard(string(conv.Visitor), len(c.opening))]
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		if attempt >= 3 {
			return nil, errors.New("livechat: the customer's chat stays active under another conversation")
		}
		conn, err := f.wait(ctx)
		if err != nil {
			return nil, c.ended(ctx, err)
		}
		var list struct {
			Chats []chatSummary `json:"chats_summary"`
		}
		if err := conn.call(ctx, "list_chats", map[string]any{"limit": 25}, &list); err != nil {
			return nil, fmt.Errorf("list_chats: %w", err)
		}
		var chat, thread string
		var latest *chatSummary
		for i := range list.Chats {
			s := &list.Chats[i]
			if latest == nil {
				latest = s
			}
			if s.Active {
				latest = s
				break
			}
		}
		chatReq := map[string]any{}
		if c.group != nil {
			chatReq["access"] = map[string]any{"group_ids": []int{*c.group}}
		}
		switch {
		case latest != nil && latest.Active:
			owner, err := sink.Resolve(ctx, relay.KindThread, latest.LastThreadID)
			if err == nil && owner != string(conv.ID) {
				c.log.Info().Str("conv", string(conv.ID)).Str("stale_conv", owner).Msg("deactivating the customer's stale livechat thread")
				err := conn.call(ctx, "deactivate_chat", map[string]any{"id": latest.ID}, nil)
				if err != nil && !isInactive(err) {
					return nil, fmt.Errorf("deactivate stale thread: %w", err)
				}
				continue
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			chat, thread = latest.ID, latest.LastThreadID
		case latest != nil:
			var res struct {
				ThreadID string `json:"thread_id"`
			}
			chatReq["id"] = latest.ID
			err := conn.call(ctx, "resume_chat", map[string]any{"chat": chatReq}, &res)
			if isActiveChat(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("resume_chat: %w", err)
			}
			chat, thread = latest.ID, res.ThreadID
		default:
			var res struct {
				ChatID   string `json:"chat_id"`
				ThreadID string `json:"thread_id"`
			}
			err := conn.call(ctx, "start_chat", map[string]any{"chat": chatReq}, &res)
			if isActiveChat(err) {
				continue // started before a crash: list_chats finds it
			}
			if err != nil {
				return nil, fmt.Errorf("start_chat: %w", err)
			}
			chat, thread = res.ChatID, res.ThreadID
		}
		if chat == "" || thread == "" {
			return nil, errors.New("livechat: chat or thread id missing in the answer")
		}
		if err := sink.Bind(ctx, relay.KindRoom, string(conv.ID), roomID(chat, thread)); err != nil {
			return nil, err
		}
		if err := sink.Bind(ctx, relay.KindThread, string(conv.ID), thread); err != nil {
			return nil, err
		}
		f.setRoom(chat, thread)
		return f, nil
	}
}

// chatSummary is the part of a customer list_chats entry the connector
// reads.
type chatSummary struct {
	ID           string `json:"id"`
	LastThreadID string `json:"last_thread_id"`
	Active       bool   `json:"active"`
}

func isInactive(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Type == wire.ChatInactive
}

// send posts an event with the core event id as custom_id. A custom_id
// already seen in the thread (resynced after every connect, before any
// delivery goes out) is not sent again: LiveChat's docs promise no
// deduplication on custom_id (platform.text.com/docs/messaging/
// customer-chat-api/v3.5/rtm-reference, "Send Event"; §2.4 calls it
// "client-chosen, echoed"), while chatgate's customer surface is
// idempotent on it as well.
func (c *Connector) send(ctx context.Context, sink *relay.Sink, d relay.Delivery) error {
	text := d.Text()
	if strings.TrimSpace(text) == "" {
		return nil // nothing a LiveChat message can carry
	}
	f, err := c.open(ctx, sink, d.Conv, &d.Visitor)
	if err != nil {
		return err
	}
	conn, err := f.wait(ctx)
	if err != nil {
		return c.ended(ctx, err)
	}
	if f.sent(d.Event.ID) {
		return nil
	}
	chat, thread := f.room()
	err = conn.call(ctx, "send_event", map[string]any{"chat_id": chat,
		"event": map[string]any{"type": "message", "text": text, "custom_id": d.Event.ID}}, nil)
	if isInactive(err) {
		// Closed upstream while the message was on its way: the visitor
		// learns the chat ended; the message stays undelivered, visible
		// among the exhausted deliveries.
		if cerr := sink.Closed(ctx, d.Conv.ID, nil); cerr != nil {
			return cerr
		}
		f.end()
		return fmt.Errorf("%w: upstream thread %s is inactive: %w", relay.ErrPermanent, thread, err)
	}
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			// No answer: the event may be upstream all the same.
			// LiveChat documents custom_id as echoed, not as an
			// idempotency key (rtm-reference v3.5, "Send Event"), so
			// the thread is read again before the retry: a custom_id
			// found there is not sent twice.
			f.unsure()
		}
		return fmt.Errorf("send_event: %w", err)
	}
	f.markSent(d.Event.ID)
	return nil
}

// close deactivates the conversation's thread, if it is still the active
// one (deactivate_chat acts on the chat's active thread, which after a
// lost close may belong to a newer conversation).
func (c *Connector) close(ctx context.Context, sink *relay.Sink, conv model.Conversation) error {
	room, err := sink.Link(ctx, relay.KindRoom, string(conv.ID))
	if errors.Is(err, store.ErrNotFound) {
		c.unfollow(conv.ID)
		return nil // never opened upstream
	}
	if err != nil {
		return err
	}
	chat, thread, ok := splitRoom(room)
	if !ok {
		return fmt.Errorf("%w: malformed upstream room %q", relay.ErrPermanent, room)
	}
	f, err := c.followerFor(ctx, conv, nil)
	if err != nil {
		return err
	}
	f.setRoom(chat, thread)
	// Not while the visitor's next conversation opens: it may deactivate
	// this thread as stale and resume the chat, and a deactivate_chat
	// from here would then close the new thread.
	mu := &c.opening[shard(string(conv.Visitor), len(c.opening))]
	mu.Lock()
	defer mu.Unlock()
	conn, err := f.wait(ctx)
	if errors.Is(err, errEnded) {
		return nil // closed upstream meanwhile
	}
	if err != nil {
		return err
	}
	var got rtmChat
	err = conn.call(ctx, "get_chat", map[string]any{"chat_id": chat, "thread_id": thread}, &got)
	if err == nil && got.Thread.Active {
		err = conn.call(ctx, "deactivate_chat", map[string]any{"id": chat}, nil)
	}
	if err != nil && !isInactive(err) && !isNotFound(err) {
		return fmt.Errorf("deactivate_chat: %w", err)
	}
	f.end()
	return nil
}

// ended turns errEnded (the follower found the thread closed upstream)
// into a permanent failure, unless the connector is only stopping: then
// the delivery stays as it was.
func (c *Connector) ended(ctx context.Context, err error) error {
	if !errors.Is(err, errEnded) || ctx.Err() != nil || c.runCtx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: the upstream thread is closed", relay.ErrPermanent)
}

func isNotFound(err error) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Type == wire.NotFound
}
