package webhooks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
)

// Versions whose Configuration API paths are served; the webhook envelope
// is the same for all of them (v3.4+, organization_id).
var Versions = []string{"3.4", "3.5", "3.6"}

// Limits of registration (§3.1 where it says; chatgate's choice otherwise).
const (
	maxURL             = 500
	maxPerActionClient = 3
	maxSecret          = 1024
	maxDescription     = 1024
	maxClientID        = 256
	maxFilterUserIDs   = 100
	defaultFailures    = 100
	maxFailures        = 1000
)

// limitReached is §2.9's limit_reached (max webhooks per action and client).
const limitReached = wire.LimitReached

// Mount serves the Configuration API's webhook actions:
//
//	POST /v3.{4,5,6}/configuration/action/<action>   (JSON body)
//	GET  /v3.{4,5,6}/configuration/action/list_webhook_failures?webhook_id=&limit=
//
// Every action but list_webhook_names needs "Authorization: Bearer <agent
// token>" of an administrator (model.Agent.Admin; others get
// authorization 403). Errors are the Web API's {"error":{"type","message"}} with
// validation 400, authentication 401, not_found 404, limit_reached 400,
// entity_too_large 413, service_unavailable 503, internal 500.
func (s *Service) Mount(r gin.IRouter) {
	for _, v := range Versions {
		r.POST("/v"+v+"/configuration/action/:action", s.serve)
		r.GET("/v"+v+"/configuration/action/list_webhook_failures", s.serveFailuresGET)
	}
}

type apiHandler func(ctx context.Context, agent model.AgentID, body []byte) (any, error)

func (s *Service) actions() map[string]apiHandler {
	return map[string]apiHandler{
		"register_webhook":      s.register,
		"list_webhooks":         s.listWebhooks,
		"unregister_webhook":    s.unregister,
		"list_webhook_names":    s.listNames,
		"list_webhook_failures": s.listFailures,
		"register_property":     s.registerProperty,
		"unregister_property":   s.unregisterProperty,
		"list_properties":       s.listProperties,
	}
}

func (s *Service) serve(c *gin.Context) {
	h, ok := s.actions()[c.Param("action")]
	if !ok {
		s.fail(c, wire.Errorf(wire.NotFound, "Unsupported action"))
		return
	}
	var agent model.AgentID
	if c.Param("action") != "list_webhook_names" {
		if agent, ok = s.authenticate(c); !ok {
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(c, wire.Errorf(wire.EntityTooLarge, "Request entity too large"))
		} else {
			s.fail(c, wire.Errorf(wire.Validation, "Wrong format of request: unreadable body"))
		}
		return
	}
	resp, err := h(c.Request.Context(), agent, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Service) serveFailuresGET(c *gin.Context) {
	agent, ok := s.authenticate(c)
	if !ok {
		return
	}
	req := failuresRequest{WebhookID: c.Query("webhook_id")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			s.fail(c, wire.Errorf(wire.Validation, "Wrong format of request: limit must be a number"))
			return
		}
		req.Limit = n
	}
	b, _ := json.Marshal(req)
	resp, err := s.listFailures(c.Request.Context(), agent, b)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// authenticate checks the bearer token; on failure it has answered.
func (s *Service) authenticate(c *gin.Context) (model.AgentID, bool) {
	h := c.GetHeader("Authorization")
	if h == "" {
		s.fail(c, wire.Errorf(wire.Authentication, "Authentication required: send Authorization: Bearer <token>"))
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || s.cfg.Authenticate == nil {
		s.fail(c, wire.Errorf(wire.Authentication, "Invalid access token"))
		return "", false
	}
	if s.isConfigToken(token) {
		return ConfigTokenAgent, true
	}
	id, ok := s.cfg.Authenticate(token)
	if !ok {
		s.fail(c, wire.Errorf(wire.Authentication, "Invalid access token"))
		return "", false
	}
	// Webhooks are licence-wide (every department's chats, agents-only
	// events included) and properties set the access rules of everyone's
	// data: the Configuration API is an administrator's (issue 16, High 2).
	if a, found := s.agent(id); !found || !a.Admin {
		s.fail(c, wire.Errorf(wire.Authorization, "The Configuration API is for administrators (agents with admin: true)"))
		return "", false
	}
	return id, true
}

// ConfigTokenAgent is who the logs name for requests made with the
// configuration token (webhooks.config_token).
const ConfigTokenAgent model.AgentID = "configuration-token"

// isConfigToken compares token with the configuration token in constant
// time (of the token's length: both sides are hashed first, so neither
// the prefix nor the length of the secret leaks).
func (s *Service) isConfigToken(token string) bool {
	if s.cfg.ConfigToken == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.cfg.ConfigToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (s *Service) agent(id model.AgentID) (model.Agent, bool) {
	if s.cfg.Agent == nil {
		return model.Agent{}, false
	}
	return s.cfg.Agent(id)
}

func (s *Service) fail(c *gin.Context, err error) {
	we, unexpected := wire.FromError(err)
	if unexpected {
		s.log.Error().Err(err).Str("action", c.Param("action")).Msg("configuration API")
	}
	c.AbortWithStatusJSON(wire.HTTPStatus(we.Type), gin.H{"error": we})
}

// decode reads a JSON object body (empty means {}); unknown fields are
// ignored, as the RTM surfaces do.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return wire.DecodePayload(&wire.Request{Payload: body}, v)
}

func invalid(format string, args ...any) error {
	return wire.Errorf(wire.Validation, "Wrong format of request: "+format, args...)
}

// --- register_webhook ----------------------------------------------------

type registerRequest struct {
	Action         string          `json:"action"`
	SecretKey      string          `json:"secret_key"`
	URL            string          `json:"url"`
	OwnerClientID  string          `json:"owner_client_id"`
	Type           string          `json:"type"`
	AdditionalData []string        `json:"additional_data"`
	Description    string          `json:"description"`
	Filters        json.RawMessage `json:"filters"`
}

// supported lists the actions chatgate delivers, in list_webhook_names
// order: the four event-driven ones (hook.go) and those of changes without
// events (notices.go):
//
//	incoming_chat, incoming_event, event_updated, chat_deactivated,
//	chat_properties_updated, chat_properties_deleted,
//	thread_properties_updated, thread_properties_deleted,
//	event_properties_updated, event_properties_deleted,
//	user_added_to_chat, user_removed_from_chat,
//	thread_tagged, thread_untagged, events_marked_as_seen
var supported = []string{IncomingChat, IncomingEvent, EventUpdated, ChatDeactivated,
	ChatPropertiesUpdated, ChatPropertiesDeleted, ThreadPropertiesUpdated, ThreadPropertiesDeleted,
	EventPropertiesUpdated, EventPropertiesDeleted, UserAddedToChat, UserRemovedFromChat,
	ThreadTagged, ThreadUntagged, EventsMarkedAsSeen}

// v35Actions are the other v3.5 webhook actions (§3.3): known, valid in
// LiveChat, not delivered by chatgate.
var v35Actions = []string{"chat_access_updated", "chat_transferred",
	"incoming_rich_message_postback", "routing_status_set", "incoming_customer", "customer_session_fields_updated", "agent_created",
	"agent_approved", "agent_updated", "agent_suspended", "agent_unsuspended", "agent_deleted", "auto_accesses_updated",
	"bot_created", "bot_updated", "bot_deleted", "group_created", "group_updated", "group_deleted", "tag_created",
	"tag_deleted", "tag_updated", "event_deleted", "thread_summary_set"}

func (s *Service) validate(req *registerRequest) (Webhook, error) {
	w := Webhook{Action: req.Action, SecretKey: req.SecretKey, URL: req.URL, OwnerClientID: req.OwnerClientID,
		Type: req.Type, Description: req.Description}
	switch {
	case req.Action == "":
		return w, invalid("action is required")
	case slices.Contains(v35Actions, req.Action):
		return w, invalid("action %s is not supported by this gateway (supported: %s)", req.Action, strings.Join(supported, ", "))
	case !slices.Contains(supported, req.Action):
		return w, invalid("action is not a webhook action")
	}
	switch {
	case req.SecretKey == "":
		return w, invalid("secret_key is required")
	case len(req.SecretKey) > maxSecret || !utf8.ValidString(req.SecretKey):
		return w, invalid("secret_key is too long or not UTF-8")
	}
	if err := validURL(req.URL, s.cfg.AllowHTTP, s.cfg.AllowPrivateNetworks); err != nil {
		return w, err
	}
	switch {
	case req.OwnerClientID == "":
		return w, invalid("owner_client_id is required")
	case len(req.OwnerClientID) > maxClientID || !utf8.ValidString(req.OwnerClientID):
		return w, invalid("owner_client_id is too long or not UTF-8")
	}
	switch req.Type {
	case "":
		return w, invalid("type is required")
	case "license":
	case "bot":
		return w, invalid("type bot is not supported: the gateway has no bot agents")
	default:
		return w, invalid("type must be license or bot")
	}
	if len(req.Description) > maxDescription || !utf8.ValidString(req.Description) {
		return w, invalid("description is too long or not UTF-8")
	}
	for _, d := range req.AdditionalData {
		if d != DataChatProperties && d != DataChatPresenceUserIDs {
			return w, invalid("additional_data may hold only %s and %s", DataChatProperties, DataChatPresenceUserIDs)
		}
		if !slices.Contains(w.AdditionalData, d) {
			w.AdditionalData = append(w.AdditionalData, d)
		}
	}
	f, err := validFilters(req.Filters, req.Action)
	if err != nil {
		return w, err
	}
	w.Filters = f
	return w, nil
}

// validURL checks a webhook URL at registration: https (or http with
// allowHTTP), and no IP literal or localhost in a private range without
// allowPrivate (names are checked again at every connection: network.go).
// Refusals name the switch that would allow the URL.
func validURL(raw string, allowHTTP, allowPrivate bool) error {
	if raw == "" {
		return invalid("url is required")
	}
	if len(raw) > maxURL {
		return invalid("url is longer than %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return invalid("url must be an absolute https URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return invalid("url must use https (http:// receivers need webhooks.allow_http: true in the gateway's configuration)")
		}
	default:
		return invalid("url must use https")
	}
	if !allowPrivate && literalPrivate(strings.ToLower(u.Hostname())) {
		return invalid("url points to a loopback, private or link-local address (allowed only with webhooks.allow_private_networks: true)")
	}
	return nil
}

// validFilters parses filters strictly: a filter chatgate does not know
// (my_bots, source_type, misspellings) is refused rather than ignored, since
// ignoring it would deliver more than the client asked for.
func validFilters(raw json.RawMessage, action string) (*Filters, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var f Filters
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, invalid("filters.%s has the wrong type", typeErr.Field)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, invalid("filter %s is not supported", strings.Trim(name, `"`))
		}
		return nil, invalid("filters must be an object")
	}
	switch f.AuthorType {
	case "":
	case "customer", "agent":
		if action != IncomingEvent && action != EventUpdated {
			return nil, invalid("filters.author_type applies only to incoming_event and event_updated")
		}
	default:
		return nil, invalid("filters.author_type must be customer or agent")
	}
	if p := f.ChatPresence; p != nil {
		if p.MyBots {
			return nil, invalid("filters.chat_presence.my_bots is not supported: the gateway has no bot agents")
		}
		if u := p.UserIDs; u != nil {
			if (len(u.Values) > 0) == (len(u.ExcludeValues) > 0) {
				return nil, invalid("filters.chat_presence.user_ids needs exactly one of values and exclude_values")
			}
			if len(u.Values)+len(u.ExcludeValues) > maxFilterUserIDs {
				return nil, invalid("filters.chat_presence.user_ids holds more than %d ids", maxFilterUserIDs)
			}
		}
	}
	if f == (Filters{}) {
		return nil, nil
	}
	return &f, nil
}

func (s *Service) register(ctx context.Context, agent model.AgentID, body []byte) (any, error) {
	var req registerRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	w, err := s.validate(&req)
	if err != nil {
		return nil, err
	}
	id, err := model.Secret(16)
	if err != nil {
		return nil, err
	}
	w.ID, w.CreatedBy, w.CreatedAt = id, agent, s.cfg.Now().UTC().Truncate(time.Microsecond)

	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.reg.Load().list
	n := 0
	for _, x := range list {
		if x.Action == w.Action && x.OwnerClientID == w.OwnerClientID {
			n++
		}
	}
	if n >= maxPerActionClient {
		return nil, wire.Errorf(limitReached, "Limit reached: %d webhooks per action and client id", maxPerActionClient)
	}
	next := append(slices.Clip(list), w)
	if err := s.writeList(ctx, next); err != nil {
		return nil, err
	}
	s.log.Info().Str("webhook", w.ID).Str("action", w.Action).Str("owner_client_id", w.OwnerClientID).
		Str("agent", string(agent)).Msg("webhook registered")
	return map[string]string{"id": w.ID}, nil
}

// --- list_webhooks, unregister_webhook, list_webhook_names ----------------

type webhookView struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	Action         string   `json:"action"`
	Filters        any      `json:"filters"`
	OwnerClientID  string   `json:"owner_client_id"`
	Type           string   `json:"type"`
	AdditionalData []string `json:"additional_data,omitempty"`
}

func (s *Service) listWebhooks(_ context.Context, _ model.AgentID, body []byte) (any, error) {
	var req struct {
		OwnerClientID string `json:"owner_client_id"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.OwnerClientID == "" {
		return nil, invalid("owner_client_id is required")
	}
	out := []webhookView{}
	for _, w := range s.reg.Load().list {
		if w.OwnerClientID != req.OwnerClientID {
			continue
		}
		v := webhookView{ID: w.ID, URL: w.URL, Description: w.Description, Action: w.Action, Filters: struct{}{},
			OwnerClientID: w.OwnerClientID, Type: w.Type, AdditionalData: w.AdditionalData}
		if w.Filters != nil {
			v.Filters = w.Filters
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) unregister(ctx context.Context, agent model.AgentID, body []byte) (any, error) {
	var req struct {
		ID            string `json:"id"`
		OwnerClientID string `json:"owner_client_id"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.ID == "":
		return nil, invalid("id is required")
	case req.OwnerClientID == "":
		return nil, invalid("owner_client_id is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.reg.Load().list
	i := slices.IndexFunc(list, func(w Webhook) bool { return w.ID == req.ID && w.OwnerClientID == req.OwnerClientID })
	if i < 0 {
		return nil, wire.Errorf(wire.NotFound, "Webhook not found")
	}
	next := slices.Delete(slices.Clone(list), i, i+1)
	if err := s.writeList(ctx, next); err != nil {
		return nil, err
	}
	// Its pending deliveries are exhausted by the worker ("webhook
	// unregistered"), so they stay visible in list_webhook_failures.
	s.log.Info().Str("webhook", req.ID).Str("agent", string(agent)).Msg("webhook unregistered")
	s.Kick()
	return struct{}{}, nil
}

type webhookName struct {
	Action         string   `json:"action"`
	Filters        []string `json:"filters"`
	AdditionalData []string `json:"additional_data"`
}

func (s *Service) listNames(context.Context, model.AgentID, []byte) (any, error) {
	out := make([]webhookName, 0, len(supported))
	for _, a := range supported {
		f := []string{"only_my_chats", "chat_presence"}
		if a == IncomingEvent || a == EventUpdated {
			f = append([]string{"author_type"}, f...)
		}
		out = append(out, webhookName{Action: a, Filters: f, AdditionalData: []string{DataChatProperties, DataChatPresenceUserIDs}})
	}
	return out, nil
}

// --- list_webhook_failures ------------------------------------------------

type failuresRequest struct {
	WebhookID string `json:"webhook_id,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

// Failure is an exhausted delivery as list_webhook_failures shows it. Its
// webhook may have been unregistered since.
type Failure struct {
	DeliveryID     string          `json:"delivery_id"`
	WebhookID      string          `json:"webhook_id"`
	Action         string          `json:"action"`
	ChatID         string          `json:"chat_id"`
	ThreadID       string          `json:"thread_id"`
	Attempts       int             `json:"attempts"`
	LastError      string          `json:"last_error"`
	CreatedAt      string          `json:"created_at"`
	ExhaustedAt    string          `json:"exhausted_at"`
	Payload        json.RawMessage `json:"payload"`
	AdditionalData json.RawMessage `json:"additional_data"`
}

func (s *Service) listFailures(ctx context.Context, _ model.AgentID, body []byte) (any, error) {
	var req failuresRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Limit < 0 || req.Limit > maxFailures:
		return nil, invalid("limit must be between 1 and %d", maxFailures)
	case req.Limit == 0:
		req.Limit = defaultFailures
	}
	return s.Failures(ctx, req.WebhookID, req.Limit)
}

// Failures lists exhausted deliveries of one webhook ("" for all), up to
// limit (<= 0: all), in (destination, conversation, order) order.
func (s *Service) Failures(ctx context.Context, webhookID string, limit int) ([]Failure, error) {
	// Rows are keyed by destination (owner and URL): narrow the scan to the
	// webhook's when it is still registered, then keep its own rows.
	target := ""
	if w := s.reg.Load().byID[webhookID]; w != nil {
		target = w.dest()
	}
	scan := limit
	if webhookID != "" {
		scan = 0
	}
	rows, err := s.st.OutboxExhausted(ctx, target, scan)
	if err != nil {
		return nil, fmt.Errorf("exhausted deliveries: %w", err)
	}
	out := make([]Failure, 0, len(rows))
	for _, r := range rows {
		if limit > 0 && len(out) >= limit {
			break
		}
		f := Failure{DeliveryID: r.ID, ThreadID: string(r.Conv), Attempts: r.Attempts,
			LastError: r.LastError, CreatedAt: wire.Time(r.CreatedAt), ExhaustedAt: wire.Time(r.NextAt)}
		var b rowBody
		if err := json.Unmarshal(r.Payload, &b); err == nil {
			f.WebhookID, f.Action, f.ChatID, f.Payload, f.AdditionalData = b.WebhookID, b.Action, b.ChatID, b.Payload, b.AdditionalData
		}
		if webhookID != "" && f.WebhookID != webhookID {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}
