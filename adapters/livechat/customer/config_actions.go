package customer

import (
	"context"
	"net/url"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/routing"
)

// Configuration-style customer actions (§2.5, §2.11). chatgate's groups
// are its departments (group id wire.GroupID of the department id) plus
// group 0, all agents. What LiveChat keeps per licence and group and
// chatgate has no notion of (forms, buttons, goals, licence and group
// properties, translations) answers as "none configured".
//
// RTM and Web API (POST):
//
//	list_group_statuses  {all: true} | {group_ids: [..]} →
//	                     {groups_status: {"<id>": online|online_for_queue|offline}}
//	get_form             {group_id, type: prechat|postchat|ticket} → {enabled: false}
//	get_predicted_agent  {group_id?} → {agent, queue}; group_offline when no
//	                     agent of the group accepts chats
//
// Web API only (spec §2.5 "Web-only"):
//
//	check_goals (POST)              {session_fields?, group_id?, page_url} → {}
//	get_dynamic_configuration (GET) ?group_id&url&channel_type&test
//	get_configuration (GET)         ?group_id&version
//	get_localization (GET)          ?group_id&language&version
//	list_license_properties (GET)   ?namespace&name → {}
//	list_group_properties (GET)     ?id&namespace&name → {}
//
// The GET actions need no Authorization (the widget reads them before it
// has a token) but do need ?organization_id= (or ?license_id=).
// get_url_info is not supported: fetching arbitrary URLs for a customer
// would make the gateway an open proxy.

// Group statuses (§2.6 groups_status_updated).
const (
	groupOnline         = "online"
	groupOnlineForQueue = "online_for_queue"
	groupOffline        = "offline"
)

// groups lists the group ids: 0, then the departments' in department order.
func (s *Surface) groups() []int {
	out := []int{0}
	for _, d := range s.d.Departments() {
		out = append(out, wire.GroupID(d.ID))
	}
	return out
}

// groupDept is the department of a group id; group 0 is none (all agents).
func (s *Surface) groupDept(id int) (model.DeptID, bool) {
	if id == 0 {
		return "", true
	}
	for _, d := range s.d.Departments() {
		if wire.GroupID(d.ID) == id {
			return d.ID, true
		}
	}
	return "", false
}

// groupStatus: online when an agent of the group accepts chats and has
// room for one more, online_for_queue when agents of the group accept
// chats but all are full (a new chat waits in the queue), else offline.
func (s *Surface) groupStatus(dept model.DeptID) string {
	r := s.d.Router()
	status := groupOffline
	for _, a := range r.Agents() {
		if !a.Serves(dept) || r.Status(a.ID) != routing.Accepting {
			continue
		}
		if a.MaxChats == 0 || r.Open(a.ID) < a.MaxChats {
			return groupOnline
		}
		status = groupOnlineForQueue
	}
	return status
}

// predictedAgent is the agent a new chat of dept would most likely get:
// an accepting agent of the group with room (queue false), else one that
// is full (queue true).
func (s *Surface) predictedAgent(dept model.DeptID) (model.Agent, bool, bool) {
	r := s.d.Router()
	var full *model.Agent
	for _, a := range r.Agents() {
		if !a.Serves(dept) || r.Status(a.ID) != routing.Accepting {
			continue
		}
		if a.MaxChats == 0 || r.Open(a.ID) < a.MaxChats {
			return a, false, true
		}
		if full == nil {
			full = &a
		}
	}
	if full != nil {
		return *full, true, true
	}
	return model.Agent{}, false, false
}

// groupParam reads a group id: absent is group 0.
func (s *Surface) groupParam(id *int) (model.DeptID, int, error) {
	if id == nil {
		return "", 0, nil
	}
	if *id < 0 {
		return "", 0, wire.Errorf(wire.Validation, "group_id must not be negative")
	}
	d, ok := s.groupDept(*id)
	if !ok {
		return "", 0, wire.NewError(wire.GroupNotFound)
	}
	return d, *id, nil
}

type groupStatusesRequest struct {
	All      bool  `json:"all"`
	GroupIDs []int `json:"group_ids"`
}

// GroupStatuses is list_group_statuses' payload.
type GroupStatuses struct {
	GroupsStatus map[string]string `json:"groups_status"`
}

func listGroupStatuses(_ context.Context, c *client, req *wire.Request) (any, error) {
	var p groupStatusesRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	ids := p.GroupIDs
	switch {
	case p.All && len(ids) > 0:
		return nil, wire.Errorf(wire.Validation, "all and group_ids are exclusive")
	case p.All:
		ids = c.s.groups()
	case len(ids) == 0:
		return nil, wire.Errorf(wire.Validation, "all or group_ids is required")
	}
	out := GroupStatuses{GroupsStatus: make(map[string]string, len(ids))}
	for _, id := range ids {
		d, _, err := c.s.groupParam(&id)
		if err != nil {
			return nil, err
		}
		out.GroupsStatus[strconv.Itoa(id)] = c.s.groupStatus(d)
	}
	return out, nil
}

type formRequest struct {
	GroupID *int   `json:"group_id"`
	Type    string `json:"type"`
}

// FormResponse is get_form's payload: the group's form of that type
// (livechat.forms in the config), or enabled false.
type FormResponse struct {
	Enabled bool       `json:"enabled"`
	Form    *wire.Form `json:"form,omitempty"`
}

func getForm(_ context.Context, c *client, req *wire.Request) (any, error) {
	var p formRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.GroupID == nil {
		return nil, wire.Errorf(wire.Validation, "group_id is required")
	}
	switch p.Type {
	case "prechat", "postchat", "ticket":
	case "":
		return nil, wire.Errorf(wire.Validation, "type is required")
	default:
		return nil, wire.Errorf(wire.Validation, "type must be prechat, postchat or ticket")
	}
	_, group, err := c.s.groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	if f, ok := c.s.cfg.Forms.Get(group, p.Type); ok {
		return FormResponse{Enabled: true, Form: f}, nil
	}
	return FormResponse{Enabled: false}, nil
}

// Greetings (LiveChat's targeted messages) are campaigns configured in
// the LiveChat app and shown by URL rules; chatgate has none, so it never
// pushes incoming_greeting, and accept_greeting / cancel_greeting (§2.x
// customer methods) can only name a greeting it never showed: after the
// payload checks they answer greeting_not_found (404 on the Web API).
type greetingRequest struct {
	GreetingID *int64 `json:"greeting_id"`
	UniqueID   string `json:"unique_id"`
}

func acceptGreeting(_ context.Context, _ *client, req *wire.Request) (any, error) {
	var p greetingRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.GreetingID == nil || p.UniqueID == "" {
		return nil, wire.Errorf(wire.Validation, "greeting_id and unique_id are required")
	}
	return nil, wire.NewError(wire.GreetingNotFound)
}

func cancelGreeting(_ context.Context, _ *client, req *wire.Request) (any, error) {
	var p greetingRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.UniqueID == "" {
		return nil, wire.Errorf(wire.Validation, "unique_id is required")
	}
	return nil, wire.NewError(wire.GreetingNotFound)
}

// PredictedAgent is get_predicted_agent's payload.
type PredictedAgent struct {
	Agent struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Avatar   string `json:"avatar"`
		IsBot    bool   `json:"is_bot"`
		JobTitle string `json:"job_title"`
		Type     string `json:"type"`
	} `json:"agent"`
	Queue bool `json:"queue"`
}

func getPredictedAgent(_ context.Context, c *client, req *wire.Request) (any, error) {
	var p struct {
		GroupID *int `json:"group_id"`
	}
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	d, _, err := c.s.groupParam(p.GroupID)
	if err != nil {
		return nil, err
	}
	a, queue, ok := c.s.predictedAgent(d)
	if !ok {
		return nil, wire.NewError(wire.GroupOffline)
	}
	var out PredictedAgent
	out.Agent.ID, out.Agent.Name, out.Agent.Avatar, out.Agent.JobTitle, out.Agent.Type = string(a.ID), a.Name, a.Avatar, a.JobTitle, "agent"
	out.Queue = queue
	return out, nil
}

type checkGoalsRequest struct {
	SessionFields []map[string]any `json:"session_fields"`
	GroupID       *int             `json:"group_id"`
	PageURL       string           `json:"page_url"`
}

// checkGoals validates and answers {}: chatgate tracks no goals.
// customer-sdk ignores the answer.
func checkGoals(_ context.Context, c *client, req *wire.Request) (any, error) {
	if !c.Web {
		return nil, wire.Errorf(wire.Validation, "Unsupported action")
	}
	var p checkGoalsRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.PageURL == "" {
		return nil, wire.Errorf(wire.Validation, "page_url is required")
	}
	if _, _, err := c.s.groupParam(p.GroupID); err != nil {
		return nil, err
	}
	return nil, nil
}

// --- GET actions ------------------------------------------------------------

// getActions are the Web API actions answered on GET, from the query.
func (s *Surface) getActions() map[string]func(url.Values) (any, error) {
	return map[string]func(url.Values) (any, error){
		"get_dynamic_configuration": s.getDynamicConfiguration,
		"get_configuration":         s.getConfiguration,
		"get_localization":          s.getLocalization,
		"list_license_properties":   func(url.Values) (any, error) { return map[string]any{}, nil },
		"list_group_properties":     s.listGroupProperties,
	}
}

// queryGroup reads ?<key>= as a group id (absent: group 0).
func (s *Surface) queryGroup(q url.Values, key string) (model.DeptID, int, error) {
	v := q.Get(key)
	if v == "" {
		return "", 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return "", 0, wire.Errorf(wire.Validation, "%s must be an integer", key)
	}
	return s.groupParam(&n)
}

// DynamicConfiguration is get_dynamic_configuration's payload (§2.11).
type DynamicConfiguration struct {
	GroupID             int    `json:"group_id"`
	OrganizationID      string `json:"organization_id,omitempty"`
	ClientLimitExceeded bool   `json:"client_limit_exceeded"`
	DomainAllowed       bool   `json:"domain_allowed"`
	OnlineGroupIDs      []int  `json:"online_group_ids"`
	ConfigVersion       string `json:"config_version"`
	LocalizationVersion string `json:"localization_version"`
	Language            string `json:"language"`
}

// configVersion is the version of everything get_configuration and
// get_localization answer; it changes only with chatgate's code.
const configVersion = "1"

func (s *Surface) getDynamicConfiguration(q url.Values) (any, error) {
	_, id, err := s.queryGroup(q, "group_id")
	if err != nil {
		return nil, err
	}
	out := DynamicConfiguration{GroupID: id, OrganizationID: s.cfg.OrganizationID, DomainAllowed: true,
		OnlineGroupIDs: []int{}, ConfigVersion: configVersion, LocalizationVersion: configVersion, Language: "en"}
	for _, g := range s.groups() {
		d, _ := s.groupDept(g)
		if s.groupStatus(d) != groupOffline {
			out.OnlineGroupIDs = append(out.OnlineGroupIDs, g)
		}
	}
	return out, nil
}

// Configuration is get_configuration's payload: the group, and no
// buttons, integrations, forms or properties.
type Configuration struct {
	Group struct {
		ID       int    `json:"id"`
		Name     string `json:"name"`
		Language string `json:"language"`
	} `json:"group"`
	Buttons      []any                     `json:"buttons"`
	Integrations map[string]any            `json:"integrations"`
	Properties   map[string]map[string]any `json:"properties"`
	// AllowedDomains is empty: every domain is allowed.
	AllowedDomains []string `json:"allowed_domains"`
}

func (s *Surface) getConfiguration(q url.Values) (any, error) {
	d, id, err := s.queryGroup(q, "group_id")
	if err != nil {
		return nil, err
	}
	var out Configuration
	out.Group.ID, out.Group.Name, out.Group.Language = id, "All agents", "en"
	if dp, ok := s.d.Department(d); ok {
		out.Group.Name = dp.Name
	}
	out.Buttons, out.Integrations, out.AllowedDomains = []any{}, map[string]any{}, []string{}
	out.Properties = map[string]map[string]any{"license": {}, "group": {}}
	return out, nil
}

// localization are the widget strings chatgate serves, in English only.
var localization = map[string]string{
	"Agents_currently_not_available": "Our agents are not available right now.",
	"Chat_closed":                    "The chat has been closed.",
	"Chat_transferred":               "The chat has been transferred.",
	"New_message":                    "New message",
	"Start_chat":                     "Start the chat",
	"Type_message":                   "Write a message…",
	"Waiting_for_agent":              "Waiting for an agent…",
	"Welcome_title":                  "Welcome!",
}

func (s *Surface) getLocalization(q url.Values) (any, error) {
	if _, _, err := s.queryGroup(q, "group_id"); err != nil {
		return nil, err
	}
	if l := q.Get("language"); l != "" && l != "en" {
		// Not an error: the widget falls back to what it gets.
		s.log.Debug().Str("language", l).Msg("get_localization: only en is served")
	}
	keys := make([]string, 0, len(localization))
	for k := range localization {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = localization[k]
	}
	return out, nil
}

func (s *Surface) listGroupProperties(q url.Values) (any, error) {
	if q.Get("id") == "" {
		return nil, wire.Errorf(wire.Validation, "id is required")
	}
	if _, _, err := s.queryGroup(q, "id"); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}

// serveGet is GET /v3.x/customer/action/<action>?organization_id=…: the
// GET actions, from the query string, without Authorization. Other
// actions answer validation "Unsupported action" on GET.
func (s *Surface) serveGet(version string) gin.HandlerFunc {
	actions := s.getActions()
	return func(g *gin.Context) {
		publicCORS(g)
		q := g.Request.URL.Query()
		if q.Get("organization_id") == "" && q.Get("license_id") == "" {
			webFail(g, wire.Errorf(wire.Validation, "organization_id is required"))
			return
		}
		if !s.orgOK(g.Request) {
			webFail(g, wire.NewError(wire.LicenseNotFound))
			return
		}
		h, ok := actions[g.Param("action")]
		if !ok {
			webFail(g, wire.Errorf(wire.Validation, "Unsupported action"))
			return
		}
		out, err := h(q)
		if err != nil {
			we, unexpected := wire.FromError(err)
			if unexpected {
				s.log.Error().Err(err).Str("action", g.Param("action")).Str("version", version).Msg("customer GET action")
			}
			webFail(g, we)
			return
		}
		b, err := wire.Encode(out)
		if err != nil {
			webFail(g, wire.NewError(wire.Internal))
			return
		}
		g.Data(200, "application/json; charset=utf-8", b)
	}
}
