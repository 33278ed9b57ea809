package agentrtm

import (
	"context"
	"strings"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/model"
	"chatgate/core/ratelimit"
	"chatgate/core/routing"
)

// table lists the actions this surface answers: one handler each, keyed by
// the action name. Anything else is answered "Unsupported action"
// (validation).
func (s *Surface) table() wire.Table[*caller] {
	t := wire.Table[*caller]{
		"login":                    {Public: true, Handle: login},
		"ping":                     {Public: true, Handle: ping},
		"set_routing_status":       {Handle: setRoutingStatus},
		"list_chats":               {Handle: listChats},
		"get_chat":                 {Handle: getChat},
		"send_event":               {Handle: sendEvent},
		"deactivate_chat":          {Handle: wire.DeactivateChat[*caller]},
		"send_typing_indicator":    {Handle: sendTypingIndicator},
		"transfer_chat":            {Handle: transferChat},
		"list_threads":             {Handle: listThreads},
		"list_archives":            {Handle: listArchives},
		"get_customer":             {Handle: getCustomer},
		"update_customer":          {Handle: updateCustomer},
		"list_routing_statuses":    {Handle: listRoutingStatuses},
		"list_agents_for_transfer": {Handle: listAgentsForTransfer},
		"mark_events_as_seen":      {Handle: wire.MarkEventsAsSeen[*caller]},
		"multicast":                {Handle: multicast},
		"logout":                   {Handle: logout},
		"tag_thread":               {Handle: tagThread},
		"untag_thread":             {Handle: untagThread},
		"follow_chat":              {Handle: followChat},
		"unfollow_chat":            {Handle: unfollowChat},
		"ban_customer":             {Handle: banCustomer},
		"start_chat":               {Handle: startChat},
		"resume_chat":              {Handle: resumeChat},
		"add_user_to_chat":         {Handle: addUserToChat},
		"remove_user_from_chat":    {Handle: removeUserFromChat},
	}
	wire.AddPropsActions(t)
	return t
}

// ping keeps the connection alive; the read deadline was already refreshed
// by the frame itself. The payload, if any, is ignored.
func ping(context.Context, *caller, *wire.Request) (any, error) { return nil, nil }

type loginRequest struct {
	Token string `json:"token"`
	// Pushes optionally narrows the pushes sent: {"3.5": ["incoming_chat", ...]}.
	Pushes map[string][]string `json:"pushes"`
	// timezone, reconnect, application, away and customer_monitoring_level
	// are accepted and ignored.
}

// License is the login response's license.
type License struct {
	ID                  string `json:"id"`
	OrganizationID      string `json:"organization_id"`
	Plan                string `json:"plan"`
	ExpirationTimestamp int64  `json:"expiration_timestamp"`
	CreationTimestamp   int64  `json:"creation_timestamp"`
	InTrial             bool   `json:"in_trial"`
}

// MyProfile is the logged-in agent as login returns it.
type MyProfile struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	Avatar         string `json:"avatar"`
	JobTitle       string `json:"job_title"`
	Type           string `json:"type"`
	RoutingStatus  string `json:"routing_status"`
	Permission     string `json:"permission"`
	Present        bool   `json:"present"`
	EventsSeenUpTo string `json:"events_seen_up_to,omitempty"`
}

// LoginResponse is the login response payload.
type LoginResponse struct {
	License      License            `json:"license"`
	MyProfile    MyProfile          `json:"my_profile"`
	ChatsSummary []wire.ChatSummary `json:"chats_summary"`
}

// licenseExpiry is reported as the licence's expiration (2100-01-01): the
// gateway has no licences, and clients treat a past date as expired.
const licenseExpiry = 4102444800

// login authenticates the connection (token "Bearer <t>"), marks the agent
// online, and returns its profile and the active chats it serves or may
// take. A second login on one connection is a validation error.
func login(ctx context.Context, k *caller, req *wire.Request) (any, error) {
	c := k.conn
	if c == nil {
		return nil, errRTMOnly()
	}
	if c.loggedIn.Load() {
		return nil, wire.Errorf(wire.Validation, "Already logged in")
	}
	var p loginRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.Token == "" {
		return nil, wire.Errorf(wire.Validation, "token is required")
	}
	scheme, token, ok := strings.Cut(p.Token, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || c.s.cfg.Authenticate == nil {
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	// Failed logins are throttled per client address (HTTP 401s are
	// counted by the gateway's middleware; frames here).
	addr := ratelimit.AddrFrom(ctx)
	if addr != "" && c.s.cfg.Logins.Blocked(addr) {
		return nil, wire.Errorf(wire.TooManyRequests, "Too many failed logins: try again later")
	}
	id, ok := c.s.cfg.Authenticate(token)
	if !ok {
		if addr != "" {
			c.s.cfg.Logins.Allow(addr)
		}
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	agent, ok := c.s.d.Router().Agent(id)
	if !ok {
		c.s.log.Warn().Str("agent", string(id)).Msg("login token maps to an agent missing from configuration")
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	}

	c.agent = agent
	c.Only = nil
	if names, ok := p.Pushes[c.Version]; ok {
		c.Only = make(map[string]bool, len(names))
		for _, n := range names {
			c.Only[n] = true
		}
	}
	// Subscribe before reading the summary so that nothing committed in
	// between is missed (at worst it is both in the summary and pushed).
	c.sub = c.s.d.Bus().SubscribeAgent(agent, c.s.cfg.deskQueue())
	c.loggedIn.Store(true)
	c.s.clients.Add(c.agent.ID, c)
	c.s.log.Info().Str("agent", string(agent.ID)).Msg("agent session connected")
	c.s.d.AgentConnected(agent.ID, true)

	chats, err := c.summaries(ctx, true)
	if err != nil {
		c.logout()
		return nil, err
	}
	// LiveChat's permissions are owner, viceowner, administrator and
	// normal; chatgate's admin agents (config admin: true) are
	// administrators.
	perm := "normal"
	if agent.Admin {
		perm = "administrator"
	}
	return LoginResponse{
		License: License{ID: c.s.cfg.LicenseID, OrganizationID: c.s.cfg.OrganizationID, Plan: "enterprise",
			ExpirationTimestamp: licenseExpiry, CreationTimestamp: c.s.created.Unix()},
		MyProfile: MyProfile{ID: string(agent.ID), Name: agent.Name, Email: emailOf(agent.ID),
			Avatar: agent.Avatar, JobTitle: agent.JobTitle, Type: "agent",
			RoutingStatus: string(c.s.d.Router().Status(agent.ID)), Permission: perm, Present: true},
		ChatsSummary: chats,
	}, nil
}

func emailOf(id model.AgentID) string {
	if strings.Contains(string(id), "@") {
		return string(id)
	}
	return ""
}

type routingStatusRequest struct {
	Status  string `json:"status"`
	AgentID string `json:"agent_id"`
}

// setRoutingStatus switches the agent between accepting_chats and
// not_accepting_chats and tells all of its connections. agent_id, when
// given, must be the agent itself (authorization otherwise).
func setRoutingStatus(_ context.Context, c *caller, req *wire.Request) (any, error) {
	var p routingStatusRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	var accepting bool
	switch routing.Status(p.Status) {
	case routing.Accepting:
		accepting = true
	case routing.NotAccepting:
	default:
		return nil, wire.Errorf(wire.Validation, "status must be accepting_chats or not_accepting_chats")
	}
	if p.AgentID != "" && p.AgentID != string(c.agent.ID) {
		return nil, wire.Errorf(wire.Authorization, "Cannot set another agent's routing status")
	}
	c.s.d.SetAccepting(c.agent.ID, accepting)
	payload := map[string]string{"agent_id": string(c.agent.ID), "status": p.Status}
	for _, o := range c.s.clients.Of(c.agent.ID) {
		if o == c.conn {
			c.after(func() { o.Push(req.RequestID, "routing_status_set", payload) })
			continue
		}
		o.Push("", "routing_status_set", payload)
	}
	return nil, nil
}
