package rocketchat

import (
	"context"
	"strings"
	"time"

	"chatgate/adapters/internal/ddp"
	"chatgate/core/model"
)

// message is a rendered message of spec §4.3: its members as fields,
// written by appendTo straight into a DDP frame (EJSON) or a REST answer
// in the order and with the omissions encoding a map of them would have
// (keys sorted). Every message a room's followers get and every sent
// message's REST answer is rendered here: building a map of 12 keys and
// an author map and then encoding them was half of the surface's render
// cost (TestMessageBytesAsMap, FuzzMessageBytes compare the bytes with
// the map the surface used to build).
type message struct {
	id, rid       string
	ts, updatedAt time.Time
	t             string // "t", absent when ""
	msg           string
	u             userRef
	alias, token  string // absent when ""
	// lists: "mentions" and "channels", both [].
	lists bool
	// groupable: "groupable": false.
	groupable bool
	// closing: "transcriptRequested": false.
	closing bool
	// edited: "editedAt" (editedAt) and "editedBy" ({_id, username} of
	// editedBy).
	edited   bool
	editedAt time.Time
	editedBy userRef
	file     *fileRef // "file", absent when nil
	// The members of rarer messages, absent when nil: maps and slices
	// as before, written by the encoder of the answer they are part of.
	attachments  []any
	transferData map[string]any
	requestData  map[string]any
	// fileUpload is REST's (restMessage), absent when nil.
	fileUpload map[string]any
	// method: "newRoom" (newRoom) and "showConnecting": false, the
	// result of the DDP sendMessageLivechat method.
	method  bool
	newRoom bool
	// answer: "success": true, a REST answer that is the message itself
	// (livechat/upload's).
	answer bool
}

// userRef is a user as a message shows it: {_id, username} and, when
// named, name (an empty name is written when named: a known agent's).
type userRef struct {
	id, username, name string
	named              bool
}

// rocketCatRef is the author Rocket.Chat shows for system messages.
var rocketCatRef = userRef{id: "rocket.cat", username: "rocket.cat", name: "Rocket.Cat", named: true}

// asMap is u as the maps of rooms and transfers hold it.
func (u userRef) asMap() map[string]any {
	m := make(map[string]any, 3)
	m["_id"], m["username"] = u.id, u.username
	if u.named {
		m["name"] = u.name
	}
	return m
}

// fileRef is a message's "file": {_id, name, type}.
type fileRef struct{ id, name, typ string }

// agentRef is an agent as a message author. An agent this node does not
// know is shown by its id, with fallbackName when there is one.
func (s *Surface) agentRef(id model.AgentID, fallbackName string) userRef {
	a, ok := s.d.Router().Agent(id)
	if !ok {
		return userRef{id: string(id), username: string(id), name: fallbackName, named: fallbackName != ""}
	}
	return userRef{id: string(a.ID), username: agentUsername(a), name: a.Name, named: true}
}

// visitorRef is a visitor as a message author.
func (s *Surface) visitorRef(ctx context.Context, id model.VisitorID, name string) userRef {
	return userRef{id: string(id), username: s.username(ctx, id), name: name, named: name != ""}
}

// authorRef renders who did something, from an author kind and id: a
// visitor's name is read from the store when not given; anyone else is
// rocket.cat.
func (s *Surface) authorRef(ctx context.Context, kind, id, name string) userRef {
	switch model.AuthorKind(kind) {
	case model.AuthorVisitor:
		if name == "" {
			if v, err := s.d.Store().Visitor(ctx, model.VisitorID(id)); err == nil {
				name = v.Name
			}
		}
		return s.visitorRef(ctx, model.VisitorID(id), name)
	case model.AuthorAgent:
		return s.agentRef(model.AgentID(id), name)
	}
	return rocketCatRef
}

// convVisitorRef is the author of the conversation's visitor.
func (s *Surface) convVisitorRef(ctx context.Context, id model.ConvID) userRef {
	c, err := s.d.Store().Conversation(ctx, id)
	if err != nil {
		return rocketCatRef
	}
	return s.authorRef(ctx, string(model.AuthorVisitor), string(c.Visitor), "")
}

// renderMessage is the message of spec §4.3 for a core event, or nil for
// events a visitor must not see or that have no Rocket.Chat form (forms
// without answers, custom events, "queued" notices).
//
// System events: conversation start -> t "livechat-started" (u = visitor);
// agent assigned -> t "command", msg "connected" (u = agent; Rocket.Chat
// also writes "uj" on transfers, which the widget does not render, so it is
// not produced); close -> t "livechat-close" (msg = the reason, or "Closed by
// visitor" / "Closed by agent"; u = the closer; this starts the widget's
// close flow); transfer -> t "livechat_transfer_history" with transferData
// (§4.7); transcript e-mailed -> t "livechat_transcript_history" with
// requestData; welcome -> a plain message from the serving agent, or rocket.cat.
// A deleted message is t "rm" with an empty msg.
func (s *Surface) renderMessage(e *model.Event) *message {
	if e == nil || !e.VisibleToVisitor() {
		return nil
	}
	ctx := context.Background()
	m := &message{id: messageID(e), rid: s.roomID(ctx, e.Conv), ts: e.At, updatedAt: updatedAt(e.At, e.EditedAt)}
	switch e.Kind {
	case model.KindMessage, model.KindFile:
		m.u = s.authorRef(ctx, string(e.Author.Kind), e.Author.ID, e.Author.Name)
		m.msg, m.lists = e.Text, true
		if e.Author.Kind == model.AuthorVisitor {
			m.token = s.visitorToken(ctx, model.VisitorID(e.Author.ID))
			m.alias = m.u.name
		}
		if e.Kind == model.KindFile && !e.Deleted && e.File != nil {
			s.fileFields(m, e)
		}
	case model.KindSystem:
		m.groupable = true
		switch e.Subtype {
		case model.SysStarted:
			m.t, m.u = "livechat-started", s.convVisitorRef(ctx, e.Conv)
		case model.SysAssigned:
			m.t, m.msg = "command", "connected"
			m.u = s.agentRef(model.AgentID(e.Vars["agent_id"]), e.Vars["agent_name"])
		case model.SysClosed:
			msg := e.Vars["reason"]
			if msg == "" {
				switch model.AuthorKind(e.Vars["by_kind"]) {
				case model.AuthorVisitor:
					msg = "Closed by visitor"
				case model.AuthorAgent:
					msg = "Closed by agent"
				default:
					msg = "Closed automatically"
				}
			}
			m.t, m.msg, m.closing = "livechat-close", msg, true
			m.u = s.authorRef(ctx, e.Vars["by_kind"], e.Vars["by_id"], "")
		case model.SysTransferred:
			m.t, m.transferData = "livechat_transfer_history", s.transferData(ctx, e)
			by, _ := m.transferData["transferredBy"].(map[string]any)
			id, _ := by["_id"].(string)
			username, _ := by["username"].(string)
			m.u = userRef{id: id, username: username}
		case model.SysWelcome:
			m.groupable = false
			if id := e.Vars["agent_id"]; id != "" {
				m.u = s.agentRef(model.AgentID(id), e.Vars["agent_name"])
			} else {
				m.u = rocketCatRef
			}
			m.msg, m.lists = e.Text, true
		case model.SysTranscript:
			// As Rocket.Chat's sendTranscript records a visitor's request
			// (requestData type "visitor", user rocket.cat). The visitor's
			// token is left out of requestData: the room's visitor may
			// change (room.visitor) and the room's next visitor must not
			// read the previous one's token.
			vid := model.VisitorID(e.Vars["visitor_id"])
			vis := s.visitorRef(ctx, vid, e.Vars["visitor_name"])
			m.t, m.u = "livechat_transcript_history", userRef{id: rocketCatRef.id, username: rocketCatRef.username}
			m.requestData = map[string]any{"type": "visitor", "visitor": vis.asMap(), "user": rocketCatRef.asMap()}
		case model.SysQueued:
			return nil
		default:
			if strings.TrimSpace(e.Text) == "" {
				return nil
			}
			// Another surface's notice: shown as rocket.cat's message.
			m.groupable = false
			m.u, m.msg = rocketCatRef, e.Text
		}
	case model.KindForm:
		// A filled form: its answers as the message text and as attachment
		// fields, which Rocket.Chat clients render as a table.
		if e.Form == nil || len(e.Form.Fields) == 0 {
			return nil
		}
		m.u = s.authorRef(ctx, string(e.Author.Kind), e.Author.ID, e.Author.Name)
		m.msg, m.lists = e.Form.Summary(), true
		fields := make([]any, 0, len(e.Form.Fields))
		for _, fl := range e.Form.Fields {
			if fl.Answered() {
				fields = append(fields, map[string]any{"title": fl.FieldLabel(), "value": fl.AnswerText(), "short": false})
			}
		}
		m.attachments = []any{map[string]any{"fields": fields}}
	case model.KindRich:
		// A rich message (cards, quick replies): its titles and buttons
		// as text; Rocket.Chat's livechat has no such message.
		text := model.RichText(e.Custom)
		if text == "" {
			return nil
		}
		m.u = s.authorRef(ctx, string(e.Author.Kind), e.Author.ID, e.Author.Name)
		m.msg, m.lists = text, true
	case model.KindAnnotation:
		if strings.TrimSpace(e.Text) == "" {
			return nil
		}
		m.u, m.msg = rocketCatRef, e.Text
	default:
		// Custom events are application data with no Rocket.Chat form.
		return nil
	}
	if !e.EditedAt.IsZero() && e.EditedBy != nil {
		m.edited, m.editedAt = true, e.EditedAt
		m.editedBy = s.authorRef(ctx, string(e.EditedBy.Kind), e.EditedBy.ID, e.EditedBy.Name)
	}
	if e.Deleted {
		m.t, m.msg = "rm", ""
		m.attachments, m.file, m.alias = nil, nil, ""
	}
	return m
}

// fileFields sets `file` and `attachments` (§5.20) of a file message.
// Files stored elsewhere (other surfaces' absolute URLs) are shown as a
// link in msg, because the widget prefixes attachment links with the
// server URL.
func (s *Surface) fileFields(m *message, e *model.Event) {
	f := e.File
	id, path, ok := parseUploadURL(f.URL)
	if !ok {
		if m.msg == "" {
			m.msg = f.URL
		}
		return
	}
	m.groupable = true
	m.file = &fileRef{id: id, name: f.Name, typ: f.ContentType}
	att := map[string]any{"title": f.Name, "type": "file", "description": e.Text, "title_link": path,
		"title_link_download": true}
	switch {
	case strings.HasPrefix(f.ContentType, "image/"):
		att["image_url"], att["image_type"], att["image_size"] = path, f.ContentType, f.Size
		if f.Width > 0 && f.Height > 0 {
			att["image_dimensions"] = map[string]any{"width": f.Width, "height": f.Height}
		}
	case strings.HasPrefix(f.ContentType, "audio/"):
		att["audio_url"], att["audio_type"], att["audio_size"] = path, f.ContentType, f.Size
	case strings.HasPrefix(f.ContentType, "video/"):
		att["video_url"], att["video_type"], att["video_size"] = path, f.ContentType, f.Size
	}
	m.attachments = []any{att}
}

// withRid is a copy of m under another room id (a room's alias).
func (m *message) withRid(rid string) *message {
	c := *m
	c.rid = rid
	return &c
}

// AppendEJSON writes m as a DDP frame carries it (dates as {"$date"},
// strings as JSON.stringify writes them).
func (m *message) AppendEJSON(dst []byte) ([]byte, error) { return m.appendTo(dst, true) }

// MarshalJSON is m as a REST answer carries it (for encoding/json; the
// answers themselves are written by appendREST).
func (m *message) MarshalJSON() ([]byte, error) { return m.appendTo(nil, false) }

// msgWriter writes the parts of a message in one of the two forms.
type msgWriter struct {
	ejson bool
	err   error
}

func (w *msgWriter) str(dst []byte, s string) []byte {
	if w.ejson {
		return ddp.AppendString(dst, s)
	}
	return appendJSONString(dst, s)
}

func (w *msgWriter) date(dst []byte, t time.Time) []byte {
	if !w.ejson {
		dst = append(dst, '"')
		dst = appendISOTime(dst, t)
		return append(dst, '"')
	}
	out, err := ddp.AppendDate(dst, t)
	if err != nil {
		w.err = err
		return dst
	}
	return out
}

func (w *msgWriter) value(dst []byte, v any) []byte {
	var out []byte
	var err error
	if w.ejson {
		out, err = ddp.AppendValue(dst, v)
	} else {
		out, err = appendREST(dst, v, 1)
	}
	if err != nil {
		w.err = err
		return dst
	}
	return out
}

func (w *msgWriter) user(dst []byte, u userRef, named bool) []byte {
	dst = append(dst, `{"_id":`...)
	dst = w.str(dst, u.id)
	if named && u.named {
		dst = append(dst, `,"name":`...)
		dst = w.str(dst, u.name)
	}
	dst = append(dst, `,"username":`...)
	dst = w.str(dst, u.username)
	return append(dst, '}')
}

// appendTo writes m's members in key order, as the encoders write a map
// (TestMessageBytesAsMap).
func (m *message) appendTo(dst []byte, ejson bool) ([]byte, error) {
	w := msgWriter{ejson: ejson}
	dst = append(dst, `{"_id":`...)
	dst = w.str(dst, m.id)
	dst = append(dst, `,"_updatedAt":`...)
	dst = w.date(dst, m.updatedAt)
	if m.alias != "" {
		dst = append(dst, `,"alias":`...)
		dst = w.str(dst, m.alias)
	}
	if m.attachments != nil {
		dst = append(dst, `,"attachments":`...)
		dst = w.value(dst, m.attachments)
	}
	if m.lists {
		dst = append(dst, `,"channels":[]`...)
	}
	if m.edited {
		dst = append(dst, `,"editedAt":`...)
		dst = w.date(dst, m.editedAt)
		dst = append(dst, `,"editedBy":`...)
		dst = w.user(dst, m.editedBy, false)
	}
	if m.file != nil {
		dst = append(dst, `,"file":{"_id":`...)
		dst = w.str(dst, m.file.id)
		dst = append(dst, `,"name":`...)
		dst = w.str(dst, m.file.name)
		dst = append(dst, `,"type":`...)
		dst = w.str(dst, m.file.typ)
		dst = append(dst, '}')
	}
	if m.fileUpload != nil {
		dst = append(dst, `,"fileUpload":`...)
		dst = w.value(dst, m.fileUpload)
	}
	if m.groupable {
		dst = append(dst, `,"groupable":false`...)
	}
	if m.lists {
		dst = append(dst, `,"mentions":[]`...)
	}
	dst = append(dst, `,"msg":`...)
	dst = w.str(dst, m.msg)
	if m.method {
		dst = append(dst, `,"newRoom":`...)
		if m.newRoom {
			dst = append(dst, "true"...)
		} else {
			dst = append(dst, "false"...)
		}
	}
	if m.requestData != nil {
		dst = append(dst, `,"requestData":`...)
		dst = w.value(dst, m.requestData)
	}
	dst = append(dst, `,"rid":`...)
	dst = w.str(dst, m.rid)
	if m.method {
		dst = append(dst, `,"showConnecting":false`...)
	}
	if m.answer {
		dst = append(dst, `,"success":true`...)
	}
	if m.t != "" {
		dst = append(dst, `,"t":`...)
		dst = w.str(dst, m.t)
	}
	if m.token != "" {
		dst = append(dst, `,"token":`...)
		dst = w.str(dst, m.token)
	}
	if m.closing {
		dst = append(dst, `,"transcriptRequested":false`...)
	}
	if m.transferData != nil {
		dst = append(dst, `,"transferData":`...)
		dst = w.value(dst, m.transferData)
	}
	dst = append(dst, `,"ts":`...)
	dst = w.date(dst, m.ts)
	dst = append(dst, `,"u":`...)
	dst = w.user(dst, m.u, true)
	dst = append(dst, '}')
	if w.err != nil {
		return nil, w.err
	}
	return dst, nil
}
