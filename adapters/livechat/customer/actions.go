package customer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"chatgate/adapters/livechat/wire"
	"chatgate/core/desk"
	"chatgate/core/model"
	"chatgate/core/routing"
	"chatgate/store"
)

// table lists the customer actions (§2.5); RTM and Web API share it. login
// is RTM-only (the Web API answers it "Unsupported action").
func (s *Surface) table() wire.Table[*client] {
	t := wire.Table[*client]{
		"login":                       {Public: true, Handle: login},
		"ping":                        {Public: true, Handle: ping},
		"start_chat":                  {Handle: startChat},
		"resume_chat":                 {Handle: resumeChat},
		"send_event":                  {Handle: sendEvent},
		"get_chat":                    {Handle: getChat},
		"list_chats":                  {Handle: listChats},
		"list_threads":                {Handle: listThreads},
		"deactivate_chat":             {Handle: wire.DeactivateChat[*client]},
		"update_customer":             {Handle: updateCustomer},
		"set_customer_session_fields": {Handle: setSessionFields},
		"get_customer":                {Handle: getCustomer},
		"send_sneak_peek":             {Handle: sendSneakPeek},
		"mark_events_as_seen":         {Handle: wire.MarkEventsAsSeen[*client]},
		"list_group_statuses":         {Handle: listGroupStatuses},
		"get_form":                    {Handle: getForm},
		"accept_greeting":             {Handle: acceptGreeting},
		"cancel_greeting":             {Handle: cancelGreeting},
		"get_predicted_agent":         {Handle: getPredictedAgent},
		"check_goals":                 {Handle: checkGoals},
	}
	wire.AddPropsActions(t)
	return t
}

func ping(context.Context, *client, *wire.Request) (any, error) { return nil, nil }

type profileRequest struct {
	Name          *string          `json:"name"`
	Email         *string          `json:"email"`
	Avatar        *string          `json:"avatar"`
	SessionFields []map[string]any `json:"session_fields"`
}

type loginRequest struct {
	Token    string              `json:"token"`
	Customer *profileRequest     `json:"customer"`
	GroupID  *int                `json:"group_id"`
	Pushes   map[string][]string `json:"pushes"`
	// customer_page, customer_side_storage, is_mobile, referrer and
	// application are accepted and ignored.
}

// Statistics are the login customer's counters (the SDK needs all six).
type Statistics struct {
	ChatsCount             int `json:"chats_count"`
	ThreadsCount           int `json:"threads_count"`
	VisitsCount            int `json:"visits_count"`
	PageViewsCount         int `json:"page_views_count"`
	GreetingsShownCount    int `json:"greetings_shown_count"`
	GreetingsAcceptedCount int `json:"greetings_accepted_count"`
}

// Profile is a customer as the customer sees it.
type Profile struct {
	ID            string              `json:"id"`
	Type          string              `json:"type"`
	Name          string              `json:"name,omitempty"`
	Email         string              `json:"email,omitempty"`
	Avatar        string              `json:"avatar,omitempty"`
	SessionFields []map[string]string `json:"session_fields,omitempty"`
	Statistics    *Statistics         `json:"statistics,omitempty"`
}

// LoginChat is one entry of the login response's chats.
type LoginChat struct {
	ChatID          string `json:"chat_id"`
	HasActiveThread bool   `json:"has_active_thread"`
	HasUnreadEvents bool   `json:"has_unread_events"`
}

// MonitoringGroup is __priv_dynamic_config.customer_groups.monitoring.
type MonitoringGroup struct {
	ID                int    `json:"id"`
	StaticConfigURL   string `json:"static_config_url"`
	LanguageConfigURL string `json:"language_config_url"`
}

// DynamicConfig is the login response's __priv_dynamic_config: the SDK
// reports "online" iff online_groups_ids holds the monitoring group.
type DynamicConfig struct {
	OnlineGroupsIDs []int                      `json:"online_groups_ids"`
	CustomerGroups  map[string]MonitoringGroup `json:"customer_groups"`
}

// LoginResponse is login's payload (the fields customer-sdk 4.0.2 needs).
type LoginResponse struct {
	Customer        Profile       `json:"customer"`
	HasActiveThread bool          `json:"has_active_thread"`
	Chats           []LoginChat   `json:"chats"`
	DynamicConfig   DynamicConfig `json:"__priv_dynamic_config"`
}

func (c *client) dept(group *int) model.DeptID {
	if group == nil || *group == 0 {
		return ""
	}
	// The same group ids the surface shows (wire.GroupID: a numeric
	// department id as is, any other hashed), so that a group read from
	// list_group_statuses or get_dynamic_configuration can be chosen.
	d, _ := c.s.groupDept(*group)
	return d
}

// login authenticates an RTM connection with "Bearer <customer token>",
// applies the optional customer profile, and subscribes to the customer's
// chat.
func login(ctx context.Context, c *client, req *wire.Request) (any, error) {
	if c.Web {
		return nil, wire.Errorf(wire.Validation, "Unsupported action")
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
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	id, exp, err := c.s.Authenticate(ctx, strings.TrimSpace(token))
	if errors.Is(err, errBadToken) {
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	}
	if err != nil {
		return nil, err
	}
	if v, err := c.s.d.Store().Visitor(ctx, id); err != nil {
		return nil, wire.Errorf(wire.Authentication, "Invalid access token")
	} else if v.Banned(c.s.d.Now()) {
		return nil, wire.NewError(wire.CustomerBanned)
	}
	if p.Customer != nil && p.Customer.any() {
		upd, err := p.Customer.update()
		if err != nil {
			return nil, err
		}
		if _, err := c.s.d.UpdateVisitor(ctx, id, upd); err != nil {
			return nil, err
		}
	}
	c.me, c.expires = id, exp
	c.Only = nil
	if names, ok := p.Pushes[c.Version]; ok {
		c.Only = make(map[string]bool, len(names)+1)
		for _, n := range names {
			c.Only[n] = true
		}
		c.Only["customer_disconnected"] = true
	}
	c.sub = c.s.d.Bus().SubscribeVisitor(c.me, c.s.cfg.visitorQueue())
	c.loggedIn.Store(true)
	c.s.clients.Add(c.me, c)
	c.s.log.Info().Str("customer", string(c.me)).Msg("customer session connected")

	v, err := c.s.d.Store().Visitor(ctx, id)
	if err != nil {
		c.logout()
		return nil, err
	}
	ids, err := c.s.d.Store().VisitorConversations(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.logout()
		return nil, err
	}
	resp := LoginResponse{Customer: profile(&v), Chats: []LoginChat{}, DynamicConfig: c.s.dynamicConfig()}
	resp.Customer.Statistics = &Statistics{ThreadsCount: len(ids), VisitsCount: 1}
	if len(ids) > 0 {
		resp.Customer.Statistics.ChatsCount = 1
		conv, err := c.s.d.Store().Conversation(ctx, ids[len(ids)-1])
		if err != nil {
			c.logout()
			return nil, err
		}
		resp.HasActiveThread = conv.Active()
		unread, err := c.s.hasUnread(ctx, &v, conv)
		if err != nil {
			c.logout()
			return nil, err
		}
		resp.Chats = append(resp.Chats, LoginChat{ChatID: string(id), HasActiveThread: conv.Active(), HasUnreadEvents: unread})
	}
	return resp, nil
}

// dynamicConfig reports group 0 online while any agent accepts chats.
func (s *Surface) dynamicConfig() DynamicConfig {
	dc := DynamicConfig{OnlineGroupsIDs: []int{}, CustomerGroups: map[string]MonitoringGroup{"monitoring": {ID: 0}}}
	for _, a := range s.d.Router().Agents() {
		if s.d.Router().Status(a.ID) == routing.Accepting {
			dc.OnlineGroupsIDs = []int{0}
			break
		}
	}
	return dc
}

func profile(v *model.Visitor) Profile {
	u := wire.Customer(v, true, wire.ForCustomer)
	return Profile{ID: u.ID, Type: "customer", Name: u.Name, Email: u.Email, SessionFields: u.SessionFields}
}

func (p *profileRequest) any() bool {
	return p.Name != nil || p.Email != nil || p.Avatar != nil || p.SessionFields != nil
}

const maxSessionFields = 100

// update turns a profile request into a visitor update. avatar is
// accepted but not stored (the core visitor has no avatar yet).
func (p *profileRequest) update() (desk.VisitorUpdate, error) {
	upd := desk.VisitorUpdate{Name: p.Name, Email: p.Email}
	if p.SessionFields != nil {
		f, err := sessionFields(p.SessionFields)
		if err != nil {
			return upd, err
		}
		upd.Fields = f
	}
	return upd, nil
}

// sessionFields flattens [{k:v},...] (values must be strings).
func sessionFields(in []map[string]any) (map[string]string, error) {
	if len(in) > maxSessionFields {
		return nil, wire.Errorf(wire.Validation, "session_fields: at most %d keys", maxSessionFields)
	}
	out := make(map[string]string, len(in))
	for _, m := range in {
		if len(m) != 1 {
			return nil, wire.Errorf(wire.Validation, "session_fields: each item must have exactly one key")
		}
		for k, v := range m {
			sv, ok := v.(string)
			if !ok {
				return nil, wire.Errorf(wire.Validation, "session_fields: values must be strings")
			}
			out[k] = sv
		}
	}
	if len(out) > maxSessionFields {
		return nil, wire.Errorf(wire.Validation, "session_fields: at most %d keys", maxSessionFields)
	}
	return out, nil
}

// errChatNotFound answers every chat but the customer's own.
func errChatNotFound() *wire.Error { return wire.Errorf(wire.NotFound, "Chat not found") }

func (c *client) threads(ctx context.Context, chatID string) ([]model.ConvID, error) {
	if chatID != string(c.me) {
		return nil, errChatNotFound()
	}
	ids, err := c.s.d.Store().VisitorConversations(ctx, c.me)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(ids) == 0) {
		return nil, errChatNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("threads of %s: %w", chatID, err)
	}
	return ids, nil
}

// latestThread returns the customer's newest thread (the only one that
// can be active); on bbolt from the store's exact cache
// (store.LatestConversation), without listing the chat's threads.
func (c *client) latestThread(ctx context.Context, chatID string) (model.Conversation, error) {
	if chatID != string(c.me) {
		return model.Conversation{}, errChatNotFound()
	}
	conv, err := store.LatestConversation(ctx, c.s.d.Store(), c.me)
	if errors.Is(err, store.ErrNotFound) {
		return model.Conversation{}, errChatNotFound()
	}
	if err != nil {
		return model.Conversation{}, fmt.Errorf("newest thread of %s: %w", chatID, err)
	}
	if conv.Visitor != c.me {
		return model.Conversation{}, wire.Errorf(wire.NotFound, "Thread not found")
	}
	return conv, nil
}

func (c *client) thread(ctx context.Context, chatID string, id model.ConvID) (model.Conversation, error) {
	if chatID != string(c.me) {
		return model.Conversation{}, errChatNotFound()
	}
	conv, err := c.s.d.Store().Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && conv.Visitor != c.me) {
		return model.Conversation{}, wire.Errorf(wire.NotFound, "Thread not found")
	}
	if err != nil {
		return model.Conversation{}, fmt.Errorf("thread %s: %w", id, err)
	}
	return conv, nil
}

func (c *client) mine(model.Conversation) bool { return true }

// --- events -------------------------------------------------------------

const maxStartEvents = 20

// eventSide is the customer side of send_event: events visible to all,
// no system messages; a file event's url is then checked by ownFile (an
// upload_file URL of this customer's own upload).
func (s *Surface) eventSide() wire.EventSide {
	return wire.EventSide{Aud: wire.ForCustomer, FormType: s.cfg.Forms.TypeOf,
		File: func(e *wire.EventIn) (*model.File, error) {
			if e.URL == "" {
				return nil, wire.Errorf(wire.Validation, "event.url is required")
			}
			return &model.File{URL: e.URL}, nil
		}}
}

type threadRequest struct {
	Events     []wire.EventIn  `json:"events"`
	Properties json.RawMessage `json:"properties"`
}

type chatRequest struct {
	ID         string          `json:"id"`
	Access     *accessRequest  `json:"access"`
	Properties json.RawMessage `json:"properties"`
	Users      json.RawMessage `json:"users"`
	Thread     *threadRequest  `json:"thread"`
}

type accessRequest struct {
	GroupIDs []int `json:"group_ids"`
}

type startChatRequest struct {
	Chat       *chatRequest `json:"chat"`
	Active     *bool        `json:"active"`
	Continuous bool         `json:"continuous"`
}

// StartChatResponse is start_chat's payload.
type StartChatResponse struct {
	ChatID   string   `json:"chat_id"`
	ThreadID string   `json:"thread_id"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// ResumeChatResponse is resume_chat's payload.
type ResumeChatResponse struct {
	ThreadID string   `json:"thread_id"`
	EventIDs []string `json:"event_ids,omitempty"`
}

func startChat(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p startChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	conv, ids, err := c.start(ctx, req, p.Chat, p.Active, false)
	if err != nil {
		return nil, err
	}
	return StartChatResponse{ChatID: string(c.me), ThreadID: string(conv.ID), EventIDs: ids}, nil
}

func resumeChat(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p startChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.Chat == nil || p.Chat.ID == "" {
		return nil, wire.Errorf(wire.Validation, "chat.id is required")
	}
	if _, err := c.threads(ctx, p.Chat.ID); err != nil {
		return nil, err
	}
	conv, ids, err := c.start(ctx, req, p.Chat, p.Active, true)
	if err != nil {
		return nil, err
	}
	return ResumeChatResponse{ThreadID: string(conv.ID), EventIDs: ids}, nil
}

// start opens a new thread (start_chat, resume_chat). A chat whose thread
// is active answers validation "Chat is already active". chat.properties
// and chat.thread.properties are the chat's and the thread's initial
// properties, checked against the customer's write access like
// update_*_properties and committed with the thread. active:false (§2.5)
// creates the thread inactive (desk.StartInactive): it holds the events
// and properties but is not routed; incoming_chat still answers it.
// continuous is accepted and ignored (chatgate has no continuous chats).
func (c *client) start(ctx context.Context, req *wire.Request, chat *chatRequest, active *bool, resume bool) (model.Conversation, []string, error) {
	var drafts []desk.Draft
	var group *int
	var chatProps, threadProps map[string]map[string]json.RawMessage
	if chat != nil {
		var err error
		if chatProps, err = wire.DecodeInitialProps(chat.Properties, "chat.properties"); err != nil {
			return model.Conversation{}, nil, err
		}
		if chat.Thread != nil {
			if threadProps, err = wire.DecodeInitialProps(chat.Thread.Properties, "chat.thread.properties"); err != nil {
				return model.Conversation{}, nil, err
			}
		}
		if chat.Access != nil && len(chat.Access.GroupIDs) > 0 {
			group = &chat.Access.GroupIDs[0]
		}
		if chat.Thread != nil {
			if len(chat.Thread.Events) > maxStartEvents {
				return model.Conversation{}, nil, wire.Errorf(wire.Validation, "at most %d events", maxStartEvents)
			}
			for i := range chat.Thread.Events {
				d, err := chat.Thread.Events[i].Draft(c.s.eventSide())
				if err == nil {
					err = c.ownFile(ctx, &d)
				}
				if err != nil {
					return model.Conversation{}, nil, err
				}
				drafts = append(drafts, d)
			}
		}
	}
	_ = resume
	start := c.s.d.Start
	if active != nil && !*active {
		start = c.s.d.StartInactive
	}
	conv, evs, err := start(ctx, desk.StartRequest{Visitor: c.me, Department: c.dept(group),
		Origin: c.s.Name(), Events: drafts, Author: c.author(), Session: c.Origin(req.RequestID),
		ChatProps: chatProps, ThreadProps: threadProps})
	if err != nil {
		return model.Conversation{}, nil, err
	}
	var ids []string
	for i := range evs {
		if evs[i].Author.Kind == model.AuthorVisitor {
			ids = append(ids, wire.EventID(evs[i].Conv, evs[i].Seq))
		}
	}
	return conv, ids, nil
}

type sendEventRequest struct {
	ChatID             string        `json:"chat_id"`
	Event              *wire.EventIn `json:"event"`
	AttachToLastThread bool          `json:"attach_to_last_thread"`
}

// SendEventResponse is send_event's payload.
type SendEventResponse = wire.SendEventResponse

// sendEvent posts to the chat's active thread. custom_id makes it
// idempotent per customer: a retry returns the first event's id (and,
// on RTM, its incoming_event push again, since the SDK waits for it). An
// inactive chat answers chat_inactive, unless attach_to_last_thread asks
// to add the event to its last thread (desk.Attach).
func sendEvent(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p sendEventRequest
	if err := wire.DecodeEventPayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	if p.Event == nil {
		return nil, wire.Errorf(wire.Validation, "event is required")
	}
	draft, err := p.Event.Draft(c.s.eventSide())
	if err == nil {
		err = c.ownFile(ctx, &draft)
	}
	if err != nil {
		return nil, err
	}
	pr := desk.PostRequest{Author: c.author(), Draft: draft, Session: c.Origin(req.RequestID)}
	if draft.ClientKey != "" {
		// "/" separates: the customer id (a ULID) never holds one, and
		// PostgreSQL text cannot hold the NUL byte used before.
		pr.IdemSystem, pr.IdemKey = mapSystem, string(c.me)+"/"+draft.ClientKey
	}
	ev, replayed, err := wire.PostToChat(ctx, c, p.ChatID, p.AttachToLastThread, pr)
	if err != nil {
		return nil, err
	}
	if replayed {
		c.AfterResponse(func() {
			c.Push(req.RequestID, "incoming_event", IncomingEvent{ChatID: string(c.me), ThreadID: string(ev.Conv),
				Event: wire.RenderEventFor(&ev, wire.ForCustomer, c.s.d.Properties())})
		})
	}
	return SendEventResponse{EventID: wire.EventID(ev.Conv, ev.Seq)}, nil
}

type getChatRequest struct {
	ChatID   string `json:"chat_id"`
	ThreadID string `json:"thread_id"`
}

func getChat(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p getChatRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	var conv model.Conversation
	var err error
	if p.ThreadID != "" {
		conv, err = c.thread(ctx, p.ChatID, model.ConvID(p.ThreadID))
	} else {
		conv, err = c.latestThread(ctx, p.ChatID)
	}
	if err != nil {
		return nil, err
	}
	d, err := c.s.src.Load(ctx, conv, wire.LoadOptions{Neighbour: c.mine})
	if err != nil {
		return nil, err
	}
	return wire.RenderChat(&d, wire.ForCustomer), nil
}

// --- customer -----------------------------------------------------------

// updateCustomer changes name, email, session_fields (avatar accepted,
// not stored) and pushes customer_updated (only the changed fields, v3.3+)
// to every connection of the customer.
func updateCustomer(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p profileRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if !p.any() {
		return nil, wire.Errorf(wire.Validation, "one of name, email, avatar, session_fields is required")
	}
	upd, err := p.update()
	if err != nil {
		return nil, err
	}
	v, err := c.s.d.UpdateVisitor(ctx, c.me, upd)
	if err != nil {
		return nil, err
	}
	changed := map[string]any{"id": string(v.ID)}
	if p.Name != nil {
		changed["name"] = v.Name
	}
	if p.Email != nil {
		changed["email"] = v.Email
	}
	if p.Avatar != nil {
		changed["avatar"] = *p.Avatar
	}
	if p.SessionFields != nil {
		changed["session_fields"] = profile(&v).SessionFields
	}
	for _, o := range c.s.clients.Of(c.me) {
		if o == c {
			c.AfterResponse(func() { c.Push(req.RequestID, "customer_updated", changed) })
			continue
		}
		o.Push("", "customer_updated", changed)
	}
	return nil, nil
}

type sessionFieldsRequest struct {
	SessionFields []map[string]any `json:"session_fields"`
}

func setSessionFields(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p sessionFieldsRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.SessionFields == nil {
		return nil, wire.Errorf(wire.Validation, "session_fields is required")
	}
	f, err := sessionFields(p.SessionFields)
	if err != nil {
		return nil, err
	}
	_, err = c.s.d.UpdateVisitor(ctx, c.me, desk.VisitorUpdate{Fields: f})
	return nil, err
}

func getCustomer(ctx context.Context, c *client, _ *wire.Request) (any, error) {
	v, err := c.s.d.Store().Visitor(ctx, c.me)
	if err != nil {
		return nil, err
	}
	return profile(&v), nil
}

type sneakPeekRequest struct {
	ChatID        string  `json:"chat_id"`
	SneakPeekText *string `json:"sneak_peek_text"`
}

// sendSneakPeek shares what the customer is typing with the chat's agent
// (desk.Typing with text; agents get incoming_typing_indicator and
// incoming_sneak_peek). An empty text means "stopped typing".
func sendSneakPeek(ctx context.Context, c *client, req *wire.Request) (any, error) {
	var p sneakPeekRequest
	if err := wire.DecodePayload(req, &p); err != nil {
		return nil, err
	}
	if p.ChatID == "" {
		return nil, wire.Errorf(wire.Validation, "chat_id is required")
	}
	if p.SneakPeekText == nil {
		return nil, wire.Errorf(wire.Validation, "sneak_peek_text is required")
	}
	conv, err := c.latestThread(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	if !conv.Active() {
		return nil, wire.NewError(wire.ChatInactive)
	}
	text := *p.SneakPeekText
	return nil, c.s.d.Typing(ctx, conv.ID, c.author(), text != "", text, c.Origin(req.RequestID))
}

// unreadWindow bounds the latest events hasUnread looks at.
const unreadWindow = 50

// hasUnread reports whether the newest thread holds an event the customer
// may see, written by someone else, after what it has seen: its stored
// marker (mark_events_as_seen) or its own latest event, whichever is
// later. Only the latest unreadWindow events are looked at.
func (s *Surface) hasUnread(ctx context.Context, v *model.Visitor, conv model.Conversation) (bool, error) {
	if conv.LastSeq == 0 {
		return false, nil
	}
	from := uint64(1)
	if conv.LastSeq > unreadWindow {
		from = conv.LastSeq - unreadWindow + 1
	}
	evs, err := s.d.Store().Events(ctx, conv.ID, from, int(conv.LastSeq-from+1))
	if err != nil {
		return false, fmt.Errorf("events of %s: %w", conv.ID, err)
	}
	seen := v.SeenUpTo[string(v.ID)]
	for i := len(evs) - 1; i >= 0; i-- {
		if e := &evs[i]; e.Author.Kind == model.AuthorVisitor && e.Author.ID == string(v.ID) {
			if e.At.After(seen) {
				seen = e.At
			}
			break
		}
	}
	for i := len(evs) - 1; i >= 0; i-- {
		e := &evs[i]
		if !e.At.After(seen) {
			break
		}
		if e.VisibleToVisitor() && e.Author.ID != string(v.ID) {
			return true, nil
		}
	}
	return false, nil
}
