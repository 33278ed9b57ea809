package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/model"
	"chatgate/core/relay"
	"chatgate/store"
)

// Config configures a Rocket.Chat connector.
type Config struct {
	// Name is the connector's name (routes refer to it).
	Name string
	// URL is the Rocket.Chat server's base URL (http or https; the DDP
	// socket is <URL>/websocket).
	URL string
	// Department is the upstream department id new visitors register in
	// ("" lets the upstream desk route).
	Department string
	// Client makes the REST calls; nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds one REST call.
	Timeout time.Duration
	// ReconnectMin and ReconnectMax bound the wait before a DDP reconnect.
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often an idle DDP socket is pinged.
	PingInterval time.Duration
}

// Connector relays conversations into one Rocket.Chat server.
type Connector struct {
	cfg  Config
	base *url.URL
	log  zerolog.Logger

	mu     sync.Mutex
	status relay.Status
	// rooms are the upstream rooms followed, by rid.
	rooms map[string]room
	// live is the DDP connection while connected (nil otherwise).
	live *ddpConn
	// syncing holds back the live messages of rooms being resynced.
	syncing map[string]*heldBack
	// opening serialises opening the upstream room per visitor (sharded
	// by visitor id): two conversations of one visitor (one closing, the
	// next opening) must not ask the server for "the visitor's open room"
	// at once.
	opening [64]sync.Mutex
}

// room is a followed upstream room.
type room struct {
	conv  model.ConvID
	rid   string
	token string
}

// New checks cfg and returns the connector.
func New(cfg Config, log zerolog.Logger) (*Connector, error) {
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rocketchat connector %q: url %q must be http(s)://host[:port][/path]", cfg.Name, cfg.URL)
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
	return &Connector{cfg: cfg, base: u, log: log.With().Str("connector", cfg.Name).Logger(), rooms: make(map[string]room),
		syncing: make(map[string]*heldBack)}, nil
}

// Name implements relay.Connector.
func (c *Connector) Name() string { return c.cfg.Name }

// Status implements relay.Connector.
func (c *Connector) Status() relay.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
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
		_, err = c.open(ctx, sink, d.Conv, d.Visitor)
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

// token returns the visitor's token on this server, minting and storing it
// (before any use, so a restart reuses it) the first time.
func (c *Connector) token(ctx context.Context, sink *relay.Sink, v model.VisitorID) (string, error) {
	tok, err := sink.Link(ctx, relay.KindVisitor, string(v))
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if tok, err = model.Secret(16); err != nil {
		return "", err
	}
	if err := sink.Bind(ctx, relay.KindVisitor, string(v), tok); err != nil {
		return "", err
	}
	return tok, nil
}

// open makes sure the conversation has its upstream room: it registers the
// visitor (idempotent on the token), asks for the visitor's open room
// (Rocket.Chat creates one, or returns the open one, so a retry after a
// crash finds the room the first attempt created) and binds it.
func (c *Connector) open(ctx context.Context, sink *relay.Sink, conv model.Conversation, v model.Visitor) (room, error) {
	if rid, err := sink.Link(ctx, relay.KindRoom, string(conv.ID)); err == nil {
		tok, err := c.token(ctx, sink, v.ID)
		if err != nil {
			return room{}, err
		}
		r := room{conv: conv.ID, rid: rid, token: tok}
		c.follow(ctx, sink, r)
		return r, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return room{}, err
	}
	h := fnv.New32a()
	h.Write([]byte(v.ID))
	mu := &c.opening[h.Sum32()%uint32(len(c.opening))]
	mu.Lock()
	defer mu.Unlock()
	tok, err := c.token(ctx, sink, v.ID)
	if err != nil {
		return room{}, err
	}
	reg := map[string]any{"token": tok, "name": visitorName(v)}
	if v.Email != "" {
		reg["email"] = v.Email
	}
	if v.Phone != "" {
		reg["phone"] = v.Phone
	}
	if c.cfg.Department != "" {
		reg["department"] = c.cfg.Department
	}
	if err := c.call(ctx, http.MethodPost, "livechat/visitor", nil, map[string]any{"visitor": reg}, nil); err != nil {
		return room{}, fmt.Errorf("register visitor: %w", err)
	}
	for attempt := 0; ; attempt++ {
		var res struct {
			Room rcRoom `json:"room"`
		}
		if err := c.call(ctx, http.MethodGet, "livechat/room", url.Values{"token": {tok}}, nil, &res); err != nil {
			return room{}, fmt.Errorf("open room: %w", err)
		}
		if res.Room.ID == "" {
			return room{}, errors.New("open room: answer without room id")
		}
		err := sink.Bind(ctx, relay.KindRoom, string(conv.ID), res.Room.ID)
		if err == nil {
			r := room{conv: conv.ID, rid: res.Room.ID, token: tok}
			c.follow(ctx, sink, r)
			if res.Room.ServedBy != nil && res.Room.ServedBy.ID != "" {
				if err := sink.AgentJoined(ctx, conv.ID, agentOf(*res.Room.ServedBy)); err != nil {
					c.log.Warn().Err(err).Str("conv", string(conv.ID)).Msg("record upstream agent")
				}
			}
			return r, nil
		}
		if !errors.Is(err, store.ErrConflict) || attempt > 0 {
			return room{}, err
		}
		// The visitor's open room upstream is bound to another of its
		// conversations. If that one is over (its close never got
		// through), close the room there and ask again for a new one. If
		// it is live, this conversation ended before it could be opened
		// (the upstream was away meanwhile) and a visitor has one open
		// room: its deliveries are kept as exhausted, not forced into
		// the live room.
		other, err := sink.Resolve(ctx, relay.KindRoom, res.Room.ID)
		if err != nil {
			return room{}, err
		}
		oc, err := sink.Conversation(ctx, model.ConvID(other))
		if err != nil {
			return room{}, err
		}
		if oc.Active() {
			return room{}, fmt.Errorf("%w: the visitor's upstream room belongs to its live conversation %s", relay.ErrPermanent, other)
		}
		if err := c.call(ctx, http.MethodPost, "livechat/room.close", nil, map[string]any{"rid": res.Room.ID, "token": tok}, nil); err != nil {
			return room{}, fmt.Errorf("close stale room: %w", err)
		}
	}
}

func visitorName(v model.Visitor) string {
	if v.Name != "" {
		return v.Name
	}
	return "Visitor"
}

func agentOf(u rcUser) relay.Agent {
	return relay.Agent{ID: u.ID, Name: u.Name, Username: u.Username}
}

// send posts an event with the core event id as the message _id: the
// server keeps the first message of an _id, so a retry is harmless.
func (c *Connector) send(ctx context.Context, sink *relay.Sink, d relay.Delivery) error {
	text := d.Text()
	if strings.TrimSpace(text) == "" {
		return nil // nothing a Rocket.Chat message can carry
	}
	r, err := c.open(ctx, sink, d.Conv, d.Visitor)
	if err != nil {
		return err
	}
	body := map[string]any{"token": r.token, "rid": r.rid, "msg": text, "_id": d.Event.ID}
	err = c.call(ctx, http.MethodPost, "livechat/message", nil, body, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.is("room-closed") || ae.is("invalid-room")) {
		// Closed upstream while the message was on its way: the visitor
		// learns the chat ended; the message stays undelivered, visible
		// among the exhausted deliveries.
		if cerr := sink.Closed(ctx, d.Conv.ID, nil); cerr != nil {
			return cerr
		}
		c.unfollow(r.rid)
		return fmt.Errorf("%w: upstream room %s is closed: %w", relay.ErrPermanent, r.rid, err)
	}
	return err
}

// close closes the upstream room; a room closed already is fine.
func (c *Connector) close(ctx context.Context, sink *relay.Sink, conv model.Conversation) error {
	rid, err := sink.Link(ctx, relay.KindRoom, string(conv.ID))
	if errors.Is(err, store.ErrNotFound) {
		return nil // never opened upstream
	}
	if err != nil {
		return err
	}
	tok, err := c.token(ctx, sink, conv.Visitor)
	if err != nil {
		return err
	}
	err = c.call(ctx, http.MethodPost, "livechat/room.close", nil, map[string]any{"rid": rid, "token": tok}, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.is("room-closed") || ae.is("invalid-room") || ae.is("error-invalid-room")) {
		err = nil
	}
	if err == nil {
		c.unfollow(rid)
	}
	return err
}
