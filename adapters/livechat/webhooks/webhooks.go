// Package webhooks is LiveChat's webhooks (v3.4+ envelope, spec §3) served
// by chatgate: the Configuration API that registers them
// (register_webhook, list_webhooks, unregister_webhook, list_webhook_names,
// and chatgate's list_webhook_failures) and the worker that delivers them.
//
// Delivery is built on the store's outbox. The desk calls Service.Outbox
// inside every commit; the rows it returns (one per webhook and action) are
// written in the same transaction as the events that caused them. Run then
// POSTs them, queue by queue. A queue is the rows of one destination (a
// webhook's owner_client_id and URL, so every webhook of one application
// at one URL) and one conversation: they go strictly in order, a failing
// head holds back the rows behind it (with exponential backoff plus jitter
// between attempts) while other conversations and destinations go on, and
// a row that fails MaxAttempts times, or is older than MaxAge, is kept as
// exhausted (list_webhook_failures, OnDelivery) and its queue moves on. The outbox is the only queue: nothing is held in
// memory, so deliveries survive restarts. Delivery is at least once; every
// request carries the row's id in X-Webhook-Delivery-Id, the same on every
// attempt, so receivers can drop repeats.
//
// Webhooks themselves are kept in the store's meta values, under
// MetaKey, as one JSON array (registrations are rare and few: LiveChat
// allows 3 per action per client id).
package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
	"chatgate/store"
)

// MetaKey is the store meta value holding the registered webhooks.
const MetaKey = "livechat.webhooks"

// Actions chatgate delivers (§3.3). Payloads are those of the agent RTM
// pushes of the same names (§2.8), rendered for the agent audience:
// webhooks go to the licence owner's application, which sees what agents
// see, agents-only events included.
const (
	// IncomingChat: a conversation (thread) started; {chat} with the
	// thread's first events.
	IncomingChat = "incoming_chat"
	// IncomingEvent: an event was appended to a thread after its start
	// (messages, files, system messages such as the agent joining or the
	// chat closing); {chat_id, thread_id, event}.
	IncomingEvent = "incoming_event"
	// EventUpdated: a message was edited; {chat_id, thread_id, event}.
	// Deletions do not fire it (v3.6's event_deleted is not supported).
	EventUpdated = "event_updated"
	// ChatDeactivated: a thread was closed; {chat_id, thread_id, user_id?}.
	ChatDeactivated = "chat_deactivated"
)

// Additional data a webhook may ask for (§3.1).
const (
	DataChatProperties      = "chat_properties"
	DataChatPresenceUserIDs = "chat_presence_user_ids"
)

// Outcomes reported to Config.OnDelivery.
const (
	OutcomeDelivered = "delivered" // a 2xx answer; the row is deleted
	OutcomeRetry     = "retry"     // a failed attempt; the row waits for the next one
	OutcomeExhausted = "exhausted" // given up; the row is kept and listed
)

// Headers of every delivery, besides Content-Type and User-Agent.
const (
	// HeaderDeliveryID is the outbox row id: the same on every attempt of
	// one delivery, different for every delivery.
	HeaderDeliveryID = "X-Webhook-Delivery-Id"
	// HeaderAttempt is the 1-based number of the attempt.
	HeaderAttempt = "X-Webhook-Attempt"
	userAgent     = "chatgate-webhooks/1"
)

// Config configures the service. Zero durations and counts take the
// defaults named.
type Config struct {
	// Exclusive, if set (several nodes), runs the delivery worker only
	// while this node holds the lease name, so that one node at a time
	// delivers (in order, per conversation) and another takes over when
	// it dies. Nil: this node delivers.
	Exclusive func(ctx context.Context, name string, fn func(ctx context.Context))
	// OrganizationID is sent as the envelope's organization_id.
	OrganizationID string
	// Authenticate maps an agent bearer token (without "Bearer ") to an
	// agent; the Configuration API refuses requests it does not accept.
	// Nil refuses every request.
	Authenticate func(token string) (model.AgentID, bool)
	// ConfigToken, if set, is a bearer token that opens the
	// Configuration API (and nothing else) as ConfigTokenAgent.
	ConfigToken string
	// Agent looks up a configured agent, to render a chat's serving agent.
	Agent func(model.AgentID) (model.Agent, bool)
	// QueuePosition, if set, gives a queued conversation's position for
	// incoming_chat's thread.queue.
	QueuePosition func(model.ConvID) int
	// Bus, if set, wakes the worker after every committed change, so that
	// deliveries start at once instead of at the next poll.
	Bus *hub.Bus

	// Timeout bounds one delivery attempt (default 10s, as LiveChat).
	Timeout time.Duration
	// MaxAttempts is how many failed attempts exhaust a delivery
	// (default 15).
	MaxAttempts int
	// MinBackoff is the wait after the first failure (default 1s); it
	// doubles with every further failure up to MaxBackoff (default 15m).
	// Each wait is drawn from [d/2, d] (jitter).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge, if > 0, exhausts a delivery that still fails this long after
	// it was committed, whatever its attempts (default 0: no limit).
	MaxAge time.Duration
	// Concurrency bounds the deliveries in flight (default 4); one
	// (destination, conversation) queue is never delivered by two at once.
	Concurrency int
	// PollInterval is how often the worker looks for due retries when
	// nothing wakes it (default 1s).
	PollInterval time.Duration
	// OnDelivery, if set, is told the outcome of every attempt, with the
	// webhook action (for a Prometheus counter).
	OnDelivery func(action, outcome string)

	// Client sends the deliveries (default: newClient: no redirects, no
	// proxy, the private address check, CAFile). Its Timeout is not
	// used; Timeout is.
	Client *http.Client
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Rand returns a number in [0, 1) for backoff jitter (default
	// math/rand/v2).
	Rand func() float64
	// AllowHTTP accepts http:// webhook URLs (webhooks.allow_http);
	// otherwise they must be https.
	AllowHTTP bool
	// AllowPrivateNetworks lets deliveries connect to loopback, private
	// and link-local addresses (webhooks.allow_private_networks); see
	// network.go.
	AllowPrivateNetworks bool
	// CAFile is a PEM bundle trusted for https receivers besides the
	// system's roots (webhooks.ca_file). Used only when Client is nil.
	CAFile string
	// Properties is the property configuration that register_property,
	// unregister_property and list_properties manage (normally the
	// desk's); nil answers those actions "not configured".
	Properties *desk.Properties
}

const (
	defaultTimeout      = 10 * time.Second
	defaultMaxAttempts  = 15
	defaultMinBackoff   = time.Second
	defaultMaxBackoff   = 15 * time.Minute
	defaultConcurrency  = 4
	defaultPollInterval = time.Second
	// perQueue is how many rows of one queue a worker takes at a time.
	perQueue = 64
	// maxBody bounds a Configuration API request.
	maxBody = 64 << 10
	// maxLastError bounds the error kept on a row.
	maxLastError = 512
)

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Concurrency <= 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.PollInterval <= 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Webhook is a registered webhook, as kept in the store.
type Webhook struct {
	ID             string        `json:"id"`
	URL            string        `json:"url"`
	Description    string        `json:"description,omitempty"`
	Action         string        `json:"action"`
	SecretKey      string        `json:"secret_key"`
	Type           string        `json:"type"`
	OwnerClientID  string        `json:"owner_client_id"`
	AdditionalData []string      `json:"additional_data,omitempty"`
	Filters        *Filters      `json:"filters,omitempty"`
	CreatedBy      model.AgentID `json:"created_by,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
}

// Filters narrow which changes a webhook receives (§3.1). chatgate supports
// author_type, only_my_chats and chat_presence.user_ids; my_bots and v3.6's
// source_type are refused at registration.
type Filters struct {
	// AuthorType is customer or agent (incoming_event, event_updated
	// only); system messages match neither.
	AuthorType string `json:"author_type,omitempty"`
	// OnlyMyChats keeps chats whose property source.client_id is the
	// webhook's owner_client_id.
	OnlyMyChats  bool          `json:"only_my_chats,omitempty"`
	ChatPresence *ChatPresence `json:"chat_presence,omitempty"`
}

// ChatPresence filters on the chat's users (its customer and agent).
type ChatPresence struct {
	UserIDs *UserIDs `json:"user_ids,omitempty"`
	MyBots  bool     `json:"my_bots,omitempty"`
}

// UserIDs: exactly one of Values (some user is one of them) and
// ExcludeValues (no user is any of them).
type UserIDs struct {
	Values        []string `json:"values,omitempty"`
	ExcludeValues []string `json:"exclude_values,omitempty"`
}

// dest names the queue family of the webhook's deliveries: its owner and
// URL. The outbox rows of one destination and one conversation form one
// queue, whatever their action, so that an application that registered
// incoming_chat, incoming_event and chat_deactivated (three webhooks, one
// per action, as LiveChat requires) at one URL gets a chat's deliveries in
// the order they happened, and a failing delivery holds back the later
// ones of that chat to that receiver, not only those of its own action.
func (w *Webhook) dest() string { return destID(w.OwnerClientID, w.URL) }

// targetPrefix starts every webhook outbox target (destID): the worker
// reads only these, leaving other deliverers' rows (relay connectors) alone.
const targetPrefix = "d"

// isWebhookTarget reports whether an outbox target is a webhook
// destination (destID's shape), not another deliverer's.
func isWebhookTarget(t string) bool {
	if len(t) != len(targetPrefix)+32 || !strings.HasPrefix(t, targetPrefix) {
		return false
	}
	_, err := hex.DecodeString(t[len(targetPrefix):])
	return err == nil
}

func destID(owner, url string) string {
	h := sha256.Sum256([]byte(owner + "\x00" + url))
	return targetPrefix + hex.EncodeToString(h[:16])
}

// registry is an immutable snapshot of the registered webhooks.
type registry struct {
	list     []Webhook
	byID     map[string]*Webhook
	byAction map[string][]*Webhook
}

func newRegistry(list []Webhook) *registry {
	r := &registry{list: list, byID: make(map[string]*Webhook, len(list)), byAction: make(map[string][]*Webhook)}
	for i := range list {
		w := &r.list[i]
		r.byID[w.ID] = w
		r.byAction[w.Action] = append(r.byAction[w.Action], w)
	}
	return r
}

// Service is the Configuration API (Mount) and the delivery worker (Run);
// Outbox is the desk's hook.
type Service struct {
	st   store.Store
	cfg  Config
	log  zerolog.Logger
	mu   sync.Mutex // serialises registry changes (read, change, commit)
	reg  atomic.Pointer[registry]
	kick chan struct{}
	// noticeKicks counts the kicks follow gave for published changes.
	noticeKicks atomic.Uint64
}

// New returns a service over st. Call Load before the desk commits.
func New(st store.Store, cfg Config, log zerolog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil {
		c, err := newClient(cfg.AllowPrivateNetworks, cfg.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.Client = c
	}
	s := &Service{st: st, cfg: cfg, log: log, kick: make(chan struct{}, 1)}
	s.reg.Store(newRegistry(nil))
	return s, nil
}

// Name implements the gateway's surface interface.
func (s *Service) Name() string { return "livechat.webhooks" }

// Dispatched lists the Configuration API actions the service dispatches
// below its gin routes, as "action <name>". Tests check every entry
// against their authorization matrix.
func (s *Service) Dispatched() []string {
	var out []string
	for n := range s.actions() {
		out = append(out, "action "+n)
	}
	sort.Strings(out)
	return out
}

// Load reads the registered webhooks from the store.
func (s *Service) Load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.readList(ctx)
	if err != nil {
		return err
	}
	s.reg.Store(newRegistry(list))
	return nil
}

func (s *Service) readList(ctx context.Context) ([]Webhook, error) {
	b, err := s.st.Meta(ctx, MetaKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	var list []Webhook
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("webhooks: decode %s: %w", MetaKey, err)
	}
	return list, nil
}

// writeList commits list and makes it the current registry. Call with mu
// held.
func (s *Service) writeList(ctx context.Context, list []Webhook) error {
	if list == nil {
		list = []Webhook{}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := s.st.Commit(ctx, &store.Batch{Meta: map[string][]byte{MetaKey: b}}); err != nil {
		return err
	}
	s.reg.Store(newRegistry(list))
	return nil
}

// Webhooks returns the registered webhooks.
func (s *Service) Webhooks() []Webhook {
	return append([]Webhook(nil), s.reg.Load().list...)
}

// Kick wakes the worker (new rows may be due).
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
