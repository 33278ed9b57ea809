package wire

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// Audience selects which side a rendering is for: agents see agents-only
// events and richer customer records; customers never see agents-only
// events (§2.4).
type Audience int

const (
	ForAgent Audience = iota
	ForCustomer
)

// Properties are namespaced properties: {"<ns>": {"<name>": value}}.
type Properties map[string]map[string]json.RawMessage

func props(p map[string]map[string]json.RawMessage) Properties {
	if p == nil {
		return Properties{}
	}
	return p
}

// PropRole is the property role of an audience.
func (a Audience) PropRole() desk.PropRole {
	if a == ForCustomer {
		return desk.RoleCustomer
	}
	return desk.RoleAgent
}

// ReadableProps returns the part of p that aud may read at loc under the
// property configuration reg; a nil reg filters nothing.
func ReadableProps(reg *desk.Properties, aud Audience, loc desk.PropLocation, p map[string]map[string]json.RawMessage) map[string]map[string]json.RawMessage {
	if reg == nil || len(p) == 0 {
		return p
	}
	return reg.Readable(aud.PropRole(), loc, p)
}

// RenderEventFor renders e for aud, showing only the event properties
// aud may read under reg (nil: all of them).
func RenderEventFor(e *model.Event, aud Audience, reg *desk.Properties) Event {
	out := RenderEvent(e)
	if p := ReadableProps(reg, aud, desk.LocEvent, e.Props); len(p) > 0 {
		out.Properties = p
	} else {
		out.Properties = nil
	}
	return out
}

// Event is a v3 event of any type; fields of other types stay empty and
// are omitted.
type Event struct {
	ID         string     `json:"id"`
	CustomID   string     `json:"custom_id,omitempty"`
	Type       string     `json:"type"`
	AuthorID   string     `json:"author_id,omitempty"`
	CreatedAt  string     `json:"created_at"`
	Visibility string     `json:"visibility,omitempty"`
	Properties Properties `json:"properties,omitempty"`

	// message, system_message
	Text string `json:"text,omitempty"`
	// system_message
	SystemMessageType string            `json:"system_message_type,omitempty"`
	TextVars          map[string]string `json:"text_vars,omitempty"`
	// file
	Name        string `json:"name,omitempty"`
	URL         string `json:"url,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	// filled_form
	FormID   string      `json:"form_id,omitempty"`
	FormType string      `json:"form_type,omitempty"`
	Fields   []FormField `json:"fields,omitempty"`
	// custom
	Content json.RawMessage `json:"content,omitempty"`
	// rich_message
	TemplateID string          `json:"template_id,omitempty"`
	Elements   json.RawMessage `json:"elements,omitempty"`
}

// FormField is one field of a filled_form event, as the client sent it
// (v3.x: id, answer/answers; the seed: name, required, value/options).
// The model keeps exactly that shape, so the wire uses the model's type.
type FormField = model.FormField

// Visible reports whether aud may see e.
func Visible(e *model.Event, aud Audience) bool {
	return aud == ForAgent || e.VisibleToVisitor()
}

// RenderEvent renders a core event. Core system messages become
// system_message events with a LiveChat-style system_message_type (see
// SystemMessageType); the legacy annotation kind, which v3 dropped, is
// rendered as a system_message too.
func RenderEvent(e *model.Event) Event {
	out := Event{
		ID: EventID(e.Conv, e.Seq), CustomID: e.ClientKey, Type: string(e.Kind),
		CreatedAt: Time(e.At), Visibility: string(e.Visibility),
	}
	if out.Visibility == "" {
		out.Visibility = string(model.VisibleAll)
	}
	if e.Author.Kind != model.AuthorSystem {
		out.AuthorID = e.Author.ID
	}
	if len(e.Props) > 0 {
		out.Properties = e.Props
	}
	switch e.Kind {
	case model.KindMessage:
		out.Text = e.Text
	case model.KindSystem, model.KindAnnotation:
		out.Type = string(model.KindSystem)
		out.Text = e.Text
		out.SystemMessageType = SystemMessageType(e)
		out.TextVars = textVars(e)
	case model.KindFile:
		if f := e.File; f != nil {
			out.Name, out.URL, out.ContentType = f.Name, f.URL, f.ContentType
			out.Size, out.Width, out.Height = f.Size, f.Width, f.Height
		}
	case model.KindForm:
		if f := e.Form; f != nil {
			out.FormID, out.FormType = f.ID, f.Type
			out.Fields = make([]FormField, 0, len(f.Fields))
			for _, fl := range f.Fields {
				out.Fields = append(out.Fields, FormField(fl))
			}
		}
	case model.KindCustom:
		out.Content = e.Custom
		if len(out.Content) == 0 {
			out.Content = json.RawMessage("{}")
		}
	case model.KindRich:
		var body struct {
			TemplateID string          `json:"template_id"`
			Elements   json.RawMessage `json:"elements"`
		}
		if json.Unmarshal(e.Custom, &body) == nil {
			out.TemplateID, out.Elements = body.TemplateID, body.Elements
		}
		if len(out.Elements) == 0 {
			// A deleted rich message keeps its type but no content;
			// customer-sdk maps over elements.
			out.Elements = json.RawMessage("[]")
		}
	}
	return out
}

// SystemMessageType names a core system message the LiveChat way. LiveChat
// documents only families (routing.assigned_*, routing.archived_*, ...);
// the exact strings below are chatgate's choice:
//
//	agent_joined      → routing.assigned
//	chat_closed       → manual_archived_agent / manual_archived_customer
//	                    (closed by an agent / the customer), else
//	                    routing.archived_other
//	chat_transferred  → chat_transferred
//	others            → the core subtype as is ("system" when empty)
func SystemMessageType(e *model.Event) string {
	switch e.Subtype {
	case model.SysAssigned:
		return "routing.assigned"
	case model.SysClosed:
		switch model.AuthorKind(e.Vars["by_kind"]) {
		case model.AuthorAgent:
			return "manual_archived_agent"
		case model.AuthorVisitor:
			return "manual_archived_customer"
		}
		return "routing.archived_other"
	case "":
		return "system"
	default:
		return e.Subtype
	}
}

// textVars passes the core's variables through and adds the "agent" name
// LiveChat's templates use.
func textVars(e *model.Event) map[string]string {
	if len(e.Vars) == 0 {
		return nil
	}
	out := make(map[string]string, len(e.Vars)+1)
	for k, v := range e.Vars {
		out[k] = v
	}
	if n := e.Vars["agent_name"]; n != "" {
		out["agent"] = n
	}
	return out
}

// User is a chat member: a customer or an agent (§2.4 "Users").
type User struct {
	ID             string              `json:"id"`
	Type           string              `json:"type"`
	Name           string              `json:"name,omitempty"`
	Email          string              `json:"email,omitempty"`
	Avatar         string              `json:"avatar,omitempty"`
	JobTitle       string              `json:"job_title,omitempty"`
	Present        bool                `json:"present"`
	EventsSeenUpTo string              `json:"events_seen_up_to,omitempty"`
	Visibility     string              `json:"visibility,omitempty"`
	CreatedAt      string              `json:"created_at,omitempty"`
	SessionFields  []map[string]string `json:"session_fields,omitempty"`
}

// Customer renders a visitor as a chat user.
func Customer(v *model.Visitor, present bool, aud Audience) User {
	u := User{ID: string(v.ID), Type: "customer", Name: v.Name, Email: v.Email, Present: present,
		SessionFields: sessionFields(v.Fields)}
	if aud == ForAgent {
		u.CreatedAt = Time(v.CreatedAt)
	}
	return u
}

// sessionFields renders visitor fields as v3's ordered array of one-key
// objects, in key order so that output is stable.
func sessionFields(f map[string]string) []map[string]string {
	if len(f) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]string{k: f[k]})
	}
	return out
}

// AgentUser renders an agent as a chat user. Agent ids are e-mail
// addresses in configuration, so the id doubles as the e-mail.
func AgentUser(a *model.Agent, present bool, aud Audience) User {
	u := User{ID: string(a.ID), Type: "agent", Name: a.Name, Avatar: a.Avatar, Present: present}
	if aud == ForAgent {
		u.Visibility = string(model.VisibleAll)
		if strings.Contains(string(a.ID), "@") {
			u.Email = string(a.ID)
		}
	} else {
		u.JobTitle = a.JobTitle
	}
	return u
}

// Access says which groups may see a chat or thread.
type Access struct {
	GroupIDs []int `json:"group_ids"`
}

// AccessOf is the access of a conversation: its department's group.
func AccessOf(c *model.Conversation) Access { return Access{GroupIDs: []int{GroupID(c.Department)}} }

// Queue describes a queued thread. WaitTime is the seconds waited so far
// (chatgate has no wait estimate). Position is omitted when the router does
// not (yet) know it.
type Queue struct {
	Position int    `json:"position,omitempty"`
	WaitTime int    `json:"wait_time"`
	QueuedAt string `json:"queued_at"`
}

// Thread is a conversation with its events.
type Thread struct {
	ID         string     `json:"id"`
	CreatedAt  string     `json:"created_at"`
	Active     bool       `json:"active"`
	UserIDs    []string   `json:"user_ids"`
	Events     []Event    `json:"events"`
	Properties Properties `json:"properties"`
	Access     Access     `json:"access"`
	// Tags are shown to agents only (nil, so omitted, for customers).
	Tags             []string `json:"tags,omitzero"`
	Queue            *Queue   `json:"queue,omitempty"`
	PreviousThreadID string   `json:"previous_thread_id,omitempty"`
	NextThreadID     string   `json:"next_thread_id,omitempty"`
	// Source is a chatgate addition for agents: where the conversation
	// came from (see ConvSource).
	Source *ConvSource `json:"chatgate_source,omitempty"`
}

// ConvSource says, to agents only, where a conversation came from: the
// surface it started on (origin: livechat.v2, rocketchat,
// livechat.customer.rtm, livechat.agent.rtm) and, for a relayed
// conversation, the connector of the external desk that serves it. LiveChat
// has no such field; its clients ignore fields they do not know.
type ConvSource struct {
	Origin    string `json:"origin,omitempty"`
	RelayedTo string `json:"relayed_to,omitempty"`
}

// SourceFor is c's ConvSource as aud sees it (nil for customers).
func SourceFor(c *model.Conversation, aud Audience) *ConvSource {
	if aud != ForAgent || c.Origin == "" && c.Owner == "" {
		return nil
	}
	return &ConvSource{Origin: c.Origin, RelayedTo: c.Owner}
}

// Chat is a chat with one thread (get_chat, incoming_chat).
type Chat struct {
	ID         string     `json:"id"`
	Users      []User     `json:"users"`
	Properties Properties `json:"properties"`
	Access     Access     `json:"access"`
	Thread     Thread     `json:"thread"`
	IsFollowed bool       `json:"is_followed"`
}

// ChatData is everything a rendering of one thread needs; Source.Load
// reads it from the store.
type ChatData struct {
	Visitor model.Visitor
	Conv    model.Conversation
	// Agent is the serving agent, nil when none.
	Agent *model.Agent
	// Members are the agents added to the thread besides its serving
	// agent (Conv.Members, in order); customers are not shown those in
	// Conv.HiddenMembers.
	Members []model.Agent
	// Events of the thread, in order (all of them, or a window).
	Events []model.Event
	// QueuePos is the 1-based queue position; 0 when not queued.
	QueuePos int
	// Prev and Next are the neighbouring threads the audience may see.
	Prev, Next model.ConvID
	Now        time.Time
	// Props is the property configuration renderings filter by (read
	// access of the audience); nil shows every property.
	Props *desk.Properties
}

// users are the chat's users as aud sees them, with their ids: the
// customer, the serving agent, then the added agents (for customers, only
// those added with visibility "all"). Each carries its events_seen_up_to
// from the chat's stored markers.
func (d *ChatData) users(aud Audience) ([]User, []string) {
	cu := Customer(&d.Visitor, d.Conv.Active(), aud)
	cu.EventsSeenUpTo = d.seen(cu.ID)
	users := []User{cu}
	ids := []string{string(d.Visitor.ID)}
	add := func(a *model.Agent) {
		u := AgentUser(a, d.Conv.Active(), aud)
		u.EventsSeenUpTo = d.seen(u.ID)
		users = append(users, u)
		ids = append(ids, string(a.ID))
	}
	if d.Agent != nil {
		add(d.Agent)
	}
	for i := range d.Members {
		m := &d.Members[i]
		if (d.Agent != nil && m.ID == d.Agent.ID) || (aud == ForCustomer && d.Conv.MemberHidden(m.ID)) {
			continue
		}
		add(m)
	}
	return users, ids
}

// seen is a user's events_seen_up_to: its stored marker
// (mark_events_as_seen), or the time of its own latest event among
// d.Events if later, since writing an event (start_chat, resume_chat,
// send_event) marks everything before it as seen for its author (§2.5).
// Deriving this instead of storing it keeps send_event one commit. Empty
// when neither exists.
func (d *ChatData) seen(user string) string {
	t := d.Visitor.SeenUpTo[user]
	for i := len(d.Events) - 1; i >= 0; i-- {
		if e := &d.Events[i]; e.Author.Kind != model.AuthorSystem && e.Author.ID == user {
			if e.At.After(t) {
				t = e.At
			}
			break
		}
	}
	if t.IsZero() {
		return ""
	}
	return Time(t)
}

// MembersOf resolves conv's added agents with lookup; an agent no longer
// configured is shown by its id.
func MembersOf(conv *model.Conversation, lookup func(model.AgentID) (model.Agent, bool)) []model.Agent {
	if len(conv.Members) == 0 {
		return nil
	}
	out := make([]model.Agent, 0, len(conv.Members))
	for _, id := range conv.Members {
		a, ok := model.Agent{}, false
		if lookup != nil {
			a, ok = lookup(id)
		}
		if !ok {
			a = model.Agent{ID: id, Name: string(id)}
		}
		out = append(out, a)
	}
	return out
}

func (d *ChatData) queue() *Queue {
	if d.Conv.State != model.StateQueued {
		return nil
	}
	wait := 0
	if !d.Now.IsZero() && d.Now.After(d.Conv.CreatedAt) {
		wait = int(d.Now.Sub(d.Conv.CreatedAt) / time.Second)
	}
	return &Queue{Position: d.QueuePos, WaitTime: wait, QueuedAt: Time(d.Conv.CreatedAt)}
}

// RenderThread renders d's conversation with the events aud may see.
func RenderThread(d *ChatData, aud Audience) Thread {
	_, ids := d.users(aud)
	evs := make([]Event, 0, len(d.Events))
	for i := range d.Events {
		if Visible(&d.Events[i], aud) {
			evs = append(evs, RenderEventFor(&d.Events[i], aud, d.Props))
		}
	}
	return Thread{
		ID: string(d.Conv.ID), CreatedAt: Time(d.Conv.CreatedAt), Active: d.Conv.Active(),
		UserIDs: ids, Events: evs, Properties: props(ReadableProps(d.Props, aud, desk.LocThread, d.Conv.Props)),
		Access: AccessOf(&d.Conv), Tags: TagsFor(&d.Conv, aud),
		Queue: d.queue(), PreviousThreadID: string(d.Prev), NextThreadID: string(d.Next),
		Source: SourceFor(&d.Conv, aud),
	}
}

// RenderChat renders d as a chat carrying one thread.
func RenderChat(d *ChatData, aud Audience) Chat {
	users, _ := d.users(aud)
	return Chat{ID: string(d.Visitor.ID), Users: users,
		Properties: props(ReadableProps(d.Props, aud, desk.LocChat, d.Visitor.Props)), Access: AccessOf(&d.Conv),
		Thread: RenderThread(d, aud)}
}

// ThreadSummary is the last thread of an agent chat summary.
type ThreadSummary struct {
	ID         string      `json:"id"`
	CreatedAt  string      `json:"created_at"`
	UserIDs    []string    `json:"user_ids"`
	Properties Properties  `json:"properties"`
	Active     bool        `json:"active"`
	Access     Access      `json:"access"`
	Tags       []string    `json:"tags"`
	Queue      *Queue      `json:"queue,omitempty"`
	Source     *ConvSource `json:"chatgate_source,omitempty"`
}

// TagsFor is a thread's tags as aud sees them: agents get the list (empty,
// not null, when untagged), customers nothing.
func TagsFor(c *model.Conversation, aud Audience) []string {
	if aud != ForAgent {
		return nil
	}
	return append([]string{}, c.Tags...)
}

// LastEvent is one entry of last_event_per_type.
type LastEvent struct {
	ThreadID        string `json:"thread_id"`
	ThreadCreatedAt string `json:"thread_created_at"`
	Event           Event  `json:"event"`
}

// ChatSummary is an agent chat summary (login, list_chats).
type ChatSummary struct {
	ID                string               `json:"id"`
	Users             []User               `json:"users"`
	LastEventPerType  map[string]LastEvent `json:"last_event_per_type"`
	Properties        Properties           `json:"properties"`
	Access            Access               `json:"access"`
	IsFollowed        bool                 `json:"is_followed"`
	LastThreadSummary ThreadSummary        `json:"last_thread_summary"`
}

// RenderAgentSummary renders d (whose Events are the thread's latest
// events) as an agent chat summary.
func RenderAgentSummary(d *ChatData) ChatSummary {
	users, ids := d.users(ForAgent)
	last := make(map[string]LastEvent)
	for i := range d.Events {
		ev := RenderEventFor(&d.Events[i], ForAgent, d.Props)
		last[ev.Type] = LastEvent{ThreadID: string(d.Conv.ID), ThreadCreatedAt: Time(d.Conv.CreatedAt), Event: ev}
	}
	return ChatSummary{
		ID: string(d.Visitor.ID), Users: users, LastEventPerType: last,
		Properties: props(ReadableProps(d.Props, ForAgent, desk.LocChat, d.Visitor.Props)),
		Access:     AccessOf(&d.Conv),
		LastThreadSummary: ThreadSummary{ID: string(d.Conv.ID), CreatedAt: Time(d.Conv.CreatedAt), UserIDs: ids,
			Properties: props(ReadableProps(d.Props, ForAgent, desk.LocThread, d.Conv.Props)), Active: d.Conv.Active(), Access: AccessOf(&d.Conv), Tags: TagsFor(&d.Conv, ForAgent), Queue: d.queue(),
			Source: SourceFor(&d.Conv, ForAgent)},
	}
}
