// Package model holds chatgate's protocol-neutral conversation model: the
// nouns every surface and connector translates to and from. It knows no
// protocol, no transport and no storage engine.
package model

import (
	"encoding/json"
	"strings"
	"time"
)

// Typed identifiers keep a conversation id from being passed where a visitor
// id is expected. All of them are minted by the core (see NewID) and never
// taken from a client; foreign ids live in the store's mapping tables.
type (
	VisitorID string
	ConvID    string
	AgentID   string
	DeptID    string
)

// State is where a conversation is in its life.
type State string

const (
	// StateQueued: started, waiting for an agent to accept it.
	StateQueued State = "queued"
	// StateOpen: served by an agent.
	StateOpen State = "open"
	// StateClosed: ended; no more events may be posted.
	StateClosed State = "closed"
)

// AuthorKind says who wrote an event.
type AuthorKind string

const (
	AuthorVisitor AuthorKind = "visitor"
	AuthorAgent   AuthorKind = "agent"
	AuthorSystem  AuthorKind = "system"
)

// Author identifies the writer of an event or the actor of a command. ID is a
// VisitorID or AgentID depending on Kind, empty for the system.
type Author struct {
	Kind AuthorKind `json:"kind"`
	ID   string     `json:"id,omitempty"`
	Name string     `json:"name,omitempty"`
}

// System is the author of events the gateway itself writes.
var System = Author{Kind: AuthorSystem}

// EventKind tags the body of an event.
type EventKind string

const (
	KindMessage    EventKind = "message"
	KindSystem     EventKind = "system_message"
	KindFile       EventKind = "file"
	KindForm       EventKind = "filled_form"
	KindAnnotation EventKind = "annotation"
	KindCustom     EventKind = "custom"
	// KindRich is a structured message (LiveChat's rich_message: cards,
	// quick replies, stickers). Its body, template_id and elements, is
	// carried as is in Event.Custom; protocols without such a message
	// show Rich.Text.
	KindRich EventKind = "rich_message"
)

// Valid reports whether k is a kind the core knows.
func (k EventKind) Valid() bool {
	switch k {
	case KindMessage, KindSystem, KindFile, KindForm, KindAnnotation, KindCustom, KindRich:
		return true
	}
	return false
}

// Visibility restricts who may see an event. Agents-only events never reach a
// visitor on any surface.
type Visibility string

const (
	VisibleAll    Visibility = "all"
	VisibleAgents Visibility = "agents"
)

// System message subtypes the core writes itself. Surfaces translate them to
// their own vocabulary (v2 agent_details, RTM system_message, RC message t).
const (
	SysWelcome     = "welcome_message"
	SysStarted     = "chat_started"
	SysQueued      = "chat_queued"
	SysAssigned    = "agent_joined"
	SysTransferred = "chat_transferred"
	SysClosed      = "chat_closed"
	// SysTranscript records that a transcript of the conversation was
	// e-mailed on request (Rocket.Chat's livechat_transcript_history).
	SysTranscript = "transcript_sent"
)

// File is the body of a KindFile event.
type File struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

// FormField is one field of a filled form, in either of LiveChat's
// shapes: v3.x (id, answer or answers) or the seed's (name, required,
// value or options). Answers stay JSON as the client sent them, so every
// surface can show them in its own way and none is lost.
type FormField struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name,omitempty"`
	Type     string          `json:"type,omitempty"`
	Label    string          `json:"label"`
	Required bool            `json:"required,omitempty"`
	Answer   json.RawMessage `json:"answer,omitempty"`
	Answers  json.RawMessage `json:"answers,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	Options  json.RawMessage `json:"options,omitempty"`
}

// Form is the body of a KindForm event.
type Form struct {
	ID     string      `json:"id,omitempty"`
	Type   string      `json:"type,omitempty"` // prechat, postchat, ticket
	Fields []FormField `json:"fields"`
}

// Event is one entry of a conversation's log. Seq is dense per conversation,
// starting at 1; it is the cursor every protocol's paging derives from.
type Event struct {
	Conv       ConvID     `json:"conv"`
	Seq        uint64     `json:"seq"`
	ID         string     `json:"id"`
	Kind       EventKind  `json:"kind"`
	Author     Author     `json:"author"`
	At         time.Time  `json:"at"`
	Visibility Visibility `json:"visibility,omitempty"`
	// ClientKey is the client-chosen id (RC message _id, v3 custom_id), kept
	// so that surfaces can echo it back.
	ClientKey string `json:"client_key,omitempty"`

	Text string `json:"text,omitempty"`
	// Subtype qualifies system messages (Sys* constants) and annotations.
	Subtype string            `json:"subtype,omitempty"`
	Vars    map[string]string `json:"vars,omitempty"`
	File    *File             `json:"file,omitempty"`
	Form    *Form             `json:"form,omitempty"`
	// Custom carries custom events and kinds the core passes through as is.
	Custom json.RawMessage `json:"custom,omitempty"`
	// Props are the event's namespaced properties.
	Props map[string]map[string]json.RawMessage `json:"props,omitempty"`

	// EditedAt and EditedBy are set when the text was changed after posting.
	EditedAt time.Time `json:"edited_at,omitzero"`
	EditedBy *Author   `json:"edited_by,omitempty"`
	// Deleted marks an event its author removed; surfaces show it as
	// removed (or not at all) and never show its old content.
	Deleted bool `json:"deleted,omitempty"`
}

// VisibleToVisitor reports whether a visitor-side surface may show e.
func (e *Event) VisibleToVisitor() bool { return e.Visibility != VisibleAgents }

// Visitor is a person on the widget side.
type Visitor struct {
	ID    VisitorID `json:"id"`
	Name  string    `json:"name,omitempty"`
	Email string    `json:"email,omitempty"`
	Phone string    `json:"phone,omitempty"`
	// Department is the visitor's preferred department, used when a
	// conversation starts without one.
	Department DeptID            `json:"department,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
	// Props are the chat's namespaced properties (a LiveChat v3 chat is
	// the visitor's long-lived container of threads).
	Props     map[string]map[string]json.RawMessage `json:"props,omitempty"`
	CreatedAt time.Time                             `json:"created_at"`
	UpdatedAt time.Time                             `json:"updated_at,omitzero"`
	// BannedUntil, while in the future, bars the visitor from logging in,
	// starting conversations and posting.
	BannedUntil time.Time `json:"banned_until,omitzero"`
	// SeenUpTo is, per user of the chat (the visitor's own id or an
	// agent id), the time up to which that user has seen the chat's
	// events (LiveChat's events_seen_up_to). It lives on the visitor
	// because a LiveChat chat is the visitor's container of threads.
	SeenUpTo map[string]time.Time `json:"seen_up_to,omitempty"`
	// Rev is the store's revision of this record, as read; a write with
	// Rev > 0 commits only if nobody wrote the record in between (see
	// Conversation.Rev). Kept by the store, not in the record's JSON.
	Rev uint64 `json:"-"`
}

// Banned reports whether the visitor is banned at now.
func (v *Visitor) Banned(now time.Time) bool { return now.Before(v.BannedUntil) }

// LastActive is the latest time the visitor record shows anything of the
// visitor: its creation, its last change, the end of a ban (a banned
// visitor is kept until the ban is over, so that deleting it cannot lift
// the ban early) and the newest seen marker. The store's expiry of
// anonymous visitors (store.Store.ForgetIdleVisitors) measures idleness
// from it.
func (v *Visitor) LastActive() time.Time {
	t := v.CreatedAt
	for _, x := range []time.Time{v.UpdatedAt, v.BannedUntil} {
		if x.After(t) {
			t = x
		}
	}
	for _, x := range v.SeenUpTo {
		if x.After(t) {
			t = x
		}
	}
	return t
}

// Agent is a person on the desk side. Agents come from configuration.
type Agent struct {
	ID AgentID `json:"id"`
	// Username is the agent's handle on protocols that show one
	// (Rocket.Chat's servedBy.username, avatar URLs).
	Username    string   `json:"username,omitempty"`
	Name        string   `json:"name"`
	JobTitle    string   `json:"job_title,omitempty"`
	Avatar      string   `json:"avatar,omitempty"`
	Departments []DeptID `json:"departments,omitempty"`
	// MaxChats caps the open conversations routing gives the agent; 0 means
	// no cap.
	MaxChats int `json:"max_chats,omitempty"`
	// Admin marks an administrator: the operator view (/console/ops),
	// the Configuration API (webhooks, property registration) and
	// customer tokens for any customer are theirs alone
	// (docs/security.md).
	Admin bool `json:"admin,omitempty"`
	// Supervisor marks an agent who watches the other agents' chats of
	// its departments (Supervises); admins supervise too.
	Supervisor bool `json:"supervisor,omitempty"`
}

// Supervises reports whether the agent may see (and take over or join) a
// conversation of one of its departments served by another agent: only
// supervisors and admins may, as LiveChat gives a group's chats to the
// agents with access to the group (chats--access) and its agent app shows
// other agents' chats to supervisors. Customer tokens an agent may obtain
// still follow MaySee alone.
func (a *Agent) Supervises(c Conversation) bool {
	return (a.Supervisor || a.Admin) && a.Serves(c.Department)
}

// MaySee is the one rule of which conversations an agent may reach (the
// agent actions, and the customer tokens an agent may obtain): the agent
// serves it or was added to it, may take it from its department's queue,
// follows it, or it is an archive of the agent's departments no agent ever
// served (an offline message, a chat its visitor left while queued; a
// relayed one stays the upstream desk's).
func (a *Agent) MaySee(c Conversation) bool {
	if c.HasMember(a.ID) || c.FollowedBy(a.ID) {
		return true
	}
	if c.Agent != "" {
		return c.Agent == a.ID
	}
	switch c.State {
	case StateQueued:
		return a.Serves(c.Department)
	case StateClosed:
		return c.Owner == "" && a.Serves(c.Department)
	}
	return false
}

// Serves reports whether the agent takes conversations of department d. An
// agent with no departments serves all of them, and a conversation with no
// department may be served by any agent.
func (a *Agent) Serves(d DeptID) bool {
	if len(a.Departments) == 0 || d == "" {
		return true
	}
	for _, x := range a.Departments {
		if x == d {
			return true
		}
	}
	return false
}

// Department groups agents; a conversation belongs to one.
type Department struct {
	ID   DeptID `json:"id"`
	Name string `json:"name"`
}

// Conversation is one visitor session from start to close.
type Conversation struct {
	ID         ConvID    `json:"id"`
	Visitor    VisitorID `json:"visitor"`
	Department DeptID    `json:"department,omitempty"`
	State      State     `json:"state"`
	Agent      AgentID   `json:"agent,omitempty"`
	// Origin names the surface or connector the conversation started on.
	Origin     string    `json:"origin,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	AssignedAt time.Time `json:"assigned_at,omitzero"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
	ClosedBy   *Author   `json:"closed_by,omitempty"`
	// LastSeq is the sequence number of the newest event (0 = none yet).
	LastSeq uint64 `json:"last_seq"`
	// Props are the conversation's namespaced properties.
	Props map[string]map[string]json.RawMessage `json:"props,omitempty"`
	// Tags are the thread's tags (case-sensitive, in the order added);
	// only agents see them.
	Tags []string `json:"tags,omitempty"`
	// Followers are agents who follow the conversation without serving
	// it: they are told of its changes as if they served it.
	Followers []AgentID `json:"followers,omitempty"`
	// Members are agents added to the conversation besides its serving
	// agent: they see it and may write in it.
	Members []AgentID `json:"members,omitempty"`
	// Owner names the upstream connector (an external agent desk) that
	// serves the conversation; empty means the embedded desk's agents.
	// Set once, at start, from the relay routes: a relayed conversation
	// is never offered to embedded agents.
	Owner string `json:"owner,omitempty"`
	// Mirrors name connectors that get a read-only copy of the
	// conversation (shadow mode); their agents' answers never reach the
	// visitor.
	Mirrors []string `json:"mirrors,omitempty"`
	// HiddenMembers are the Members added with visibility "agents": the
	// visitor is neither told of them nor shown them among the chat's
	// users.
	HiddenMembers []AgentID `json:"hidden_members,omitempty"`
	// Rev is the store's revision of this record, as read: 1 after its
	// first commit, one more at each commit. A batch that writes the
	// record back with Rev > 0 commits only if nobody wrote it in between
	// (store.ErrStale otherwise), so that two nodes writing one
	// conversation never both build on the same state. Kept by the store
	// beside the record, not in its JSON.
	Rev uint64 `json:"-"`
}

// MemberHidden reports whether agent is a member the visitor must not see.
func (c *Conversation) MemberHidden(agent AgentID) bool {
	for _, a := range c.HiddenMembers {
		if a == agent {
			return true
		}
	}
	return false
}

// HasMember reports whether agent was added to the conversation.
func (c *Conversation) HasMember(agent AgentID) bool {
	for _, a := range c.Members {
		if a == agent {
			return true
		}
	}
	return false
}

// FollowedBy reports whether agent follows the conversation.
func (c *Conversation) FollowedBy(agent AgentID) bool {
	for _, a := range c.Followers {
		if a == agent {
			return true
		}
	}
	return false
}

// HasTag reports whether the conversation carries tag (case-sensitive).
func (c *Conversation) HasTag(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Active reports whether events may still be posted.
func (c *Conversation) Active() bool { return c.State != StateClosed }

// AnswerText is a field's answer as display text, whatever shape the
// protocol gave it: a string, an option {"label": ...}, a list of options
// (joined with ", "), or any other JSON as written.
//
// The answer is the first of answer, answers, value present; with none,
// the seed's checked options.
func (f FormField) AnswerText() string {
	for _, a := range []json.RawMessage{f.Answer, f.Answers, f.Value} {
		if len(a) > 0 && string(a) != "null" {
			return answerText(a)
		}
	}
	if len(f.Options) > 0 {
		var opts []struct {
			Label   string `json:"label"`
			Checked bool   `json:"checked"`
		}
		if json.Unmarshal(f.Options, &opts) == nil {
			var labels []string
			for _, o := range opts {
				if o.Checked {
					labels = append(labels, o.Label)
				}
			}
			return strings.Join(labels, ", ")
		}
	}
	return ""
}

func answerText(a json.RawMessage) string {
	var s string
	if json.Unmarshal(a, &s) == nil {
		return s
	}
	type option struct {
		Label string `json:"label"`
	}
	var one option
	if json.Unmarshal(a, &one) == nil && one.Label != "" {
		return one.Label
	}
	var many []option
	if json.Unmarshal(a, &many) == nil && len(many) > 0 {
		labels := make([]string, 0, len(many))
		for _, o := range many {
			labels = append(labels, o.Label)
		}
		return strings.Join(labels, ", ")
	}
	return string(a)
}

// Answered reports whether the field carries an answer: the seed's title
// and information fields are part of the form's layout, not questions.
func (f FormField) Answered() bool {
	return len(f.Answer) > 0 || len(f.Answers) > 0 || len(f.Value) > 0 || len(f.Options) > 0
}

// FieldLabel is what a text rendering calls the field: its label, else
// its name, without the trailing colon forms often put there ("Your
// name:").
func (f FormField) FieldLabel() string {
	l := f.Label
	if l == "" {
		l = f.Name
	}
	return strings.TrimRight(l, ": ")
}

// Summary is the form as plain text lines "Label: answer", for protocols
// that can only show text.
func (f *Form) Summary() string {
	lines := make([]string, 0, len(f.Fields))
	for _, fl := range f.Fields {
		if !fl.Answered() {
			continue
		}
		lines = append(lines, fl.FieldLabel()+": "+fl.AnswerText())
	}
	return strings.Join(lines, "\n")
}

// Rich is the body of a KindRich event as LiveChat defines it. Only the
// parts a text rendering needs are typed; the event keeps the JSON as sent.
type Rich struct {
	TemplateID string `json:"template_id"`
	Elements   []struct {
		Title    string `json:"title"`
		Subtitle string `json:"subtitle"`
		Buttons  []struct {
			Text string `json:"text"`
		} `json:"buttons"`
	} `json:"elements"`
}

// RichText is a rich message as plain text, for protocols that can only
// show text: each element's title and subtitle, then its buttons'
// texts in brackets, one element a line.
func RichText(body json.RawMessage) string {
	var r Rich
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	lines := make([]string, 0, len(r.Elements))
	for _, el := range r.Elements {
		parts := make([]string, 0, 2+len(el.Buttons))
		for _, s := range []string{el.Title, el.Subtitle} {
			if s = strings.TrimSpace(s); s != "" {
				parts = append(parts, s)
			}
		}
		for _, b := range el.Buttons {
			if t := strings.TrimSpace(b.Text); t != "" {
				parts = append(parts, "["+t+"]")
			}
		}
		if len(parts) > 0 {
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	return strings.Join(lines, "\n")
}
