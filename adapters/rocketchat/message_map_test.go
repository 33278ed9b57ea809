package rocketchat

// The map path: how the surface rendered a message until round 6, a map
// of its members encoded by the frame's or the answer's encoder. It stays
// here as the reference the direct writer (message.go) is checked against
// byte for byte (TestMessageBytesAsMap, FuzzMessageBytes); transferData
// is shared with the surface (both paths put its map in the message).

import (
	"context"
	"strings"

	"chatgate/core/model"
)

// renderMessageMap is the message of spec §4.3 for a core event, or nil for
// events a visitor must not see or that have no Rocket.Chat form (forms,
// annotations, custom events, "queued" notices).
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
func (s *Surface) renderMessageMap(e *model.Event) map[string]any {
	if e == nil || !e.VisibleToVisitor() {
		return nil
	}
	ctx := context.Background()
	// Sized for a chat message's keys, so that it does not grow while
	// filled (every message a room's followers get is rendered here). An
	// agent's plain message has 8: a map of up to 8 is a single group,
	// without the table (and its allocations) a larger hint makes.
	size := messageKeys
	if e.Kind == model.KindMessage && e.Author.Kind == model.AuthorAgent && e.EditedAt.IsZero() {
		size = agentMessageKeys
	}
	m := make(map[string]any, size)
	m["_id"], m["rid"], m["ts"], m["_updatedAt"] = messageID(e), s.roomID(ctx, e.Conv), e.At, updatedAt(e.At, e.EditedAt)
	author := func() map[string]any {
		return s.mapAuthorUser(ctx, string(e.Author.Kind), e.Author.ID, e.Author.Name)
	}
	switch e.Kind {
	case model.KindMessage, model.KindFile:
		m["u"] = author()
		m["msg"] = e.Text
		m["mentions"], m["channels"] = noneList, noneList
		if e.Author.Kind == model.AuthorVisitor {
			if tok := s.visitorToken(ctx, model.VisitorID(e.Author.ID)); tok != "" {
				m["token"] = tok
			}
			if n, _ := m["u"].(map[string]any)["name"].(string); n != "" {
				m["alias"] = n
			}
		}
		if e.Kind == model.KindFile && !e.Deleted && e.File != nil {
			s.mapFileFields(m, e)
		}
	case model.KindSystem:
		m["groupable"] = false
		switch e.Subtype {
		case model.SysStarted:
			m["t"], m["msg"] = "livechat-started", ""
			m["u"] = s.mapConvVisitorUser(ctx, e.Conv)
		case model.SysAssigned:
			id := model.AgentID(e.Vars["agent_id"])
			u := s.mapAgentUser(id, e.Vars["agent_name"])
			m["t"], m["msg"], m["u"] = "command", "connected", u
		case model.SysClosed:
			u := s.mapAuthorUser(ctx, e.Vars["by_kind"], e.Vars["by_id"], "")
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
			m["t"], m["msg"], m["u"], m["transcriptRequested"] = "livechat-close", msg, u, false
		case model.SysTransferred:
			td := s.transferData(ctx, e)
			m["t"], m["msg"], m["transferData"] = "livechat_transfer_history", "", td
			by, _ := td["transferredBy"].(map[string]any)
			m["u"] = map[string]any{"_id": by["_id"], "username": by["username"]}
		case model.SysWelcome:
			delete(m, "groupable")
			if id := e.Vars["agent_id"]; id != "" {
				m["u"] = s.mapAgentUser(model.AgentID(id), e.Vars["agent_name"])
			} else {
				m["u"] = copyMap(rocketCat)
			}
			m["msg"] = e.Text
			m["mentions"], m["channels"] = noneList, noneList
		case model.SysTranscript:
			// As Rocket.Chat's sendTranscript records a visitor's request
			// (requestData type "visitor", user rocket.cat). The visitor's
			// token is left out of requestData: the room's visitor may
			// change (room.visitor) and the room's next visitor must not
			// read the previous one's token.
			cat := map[string]any{"_id": rocketCat["_id"], "username": rocketCat["username"]}
			vis := map[string]any{"_id": e.Vars["visitor_id"], "username": s.username(ctx, model.VisitorID(e.Vars["visitor_id"]))}
			if n := e.Vars["visitor_name"]; n != "" {
				vis["name"] = n
			}
			m["t"], m["msg"], m["u"] = "livechat_transcript_history", "", cat
			m["requestData"] = map[string]any{"type": "visitor", "visitor": vis, "user": copyMap(rocketCat)}
		case model.SysQueued:
			return nil
		default:
			if strings.TrimSpace(e.Text) == "" {
				return nil
			}
			// Another surface's notice: shown as rocket.cat's message.
			delete(m, "groupable")
			m["u"], m["msg"] = copyMap(rocketCat), e.Text
		}
	case model.KindForm:
		// A filled form: its answers as the message text and as attachment
		// fields, which Rocket.Chat clients render as a table.
		if e.Form == nil || len(e.Form.Fields) == 0 {
			return nil
		}
		m["u"], m["msg"] = author(), e.Form.Summary()
		m["mentions"], m["channels"] = noneList, noneList
		fields := make([]any, 0, len(e.Form.Fields))
		for _, fl := range e.Form.Fields {
			if fl.Answered() {
				fields = append(fields, map[string]any{"title": fl.FieldLabel(), "value": fl.AnswerText(), "short": false})
			}
		}
		m["attachments"] = []any{map[string]any{"fields": fields}}
	case model.KindRich:
		// A rich message (cards, quick replies): its titles and buttons
		// as text; Rocket.Chat's livechat has no such message.
		text := model.RichText(e.Custom)
		if text == "" {
			return nil
		}
		m["u"], m["msg"] = author(), text
		m["mentions"], m["channels"] = noneList, noneList
	case model.KindAnnotation:
		if strings.TrimSpace(e.Text) == "" {
			return nil
		}
		m["u"], m["msg"] = copyMap(rocketCat), e.Text
	default:
		// Custom events are application data with no Rocket.Chat form.
		return nil
	}
	if !e.EditedAt.IsZero() && e.EditedBy != nil {
		m["editedAt"] = e.EditedAt
		u := s.mapAuthorUser(ctx, string(e.EditedBy.Kind), e.EditedBy.ID, e.EditedBy.Name)
		m["editedBy"] = map[string]any{"_id": u["_id"], "username": u["username"]}
	}
	if e.Deleted {
		m["t"], m["msg"] = "rm", ""
		delete(m, "attachments")
		delete(m, "file")
		delete(m, "alias")
	}
	return m
}

// messageKeys is the size renderMessage gives a message's map: a
// visitor's chat message has 12 keys. agentMessageKeys is an agent's
// plain (not edited) chat message's: _id, rid, ts, _updatedAt, u, msg,
// mentions, channels (TestAgentMessageKeys).
const (
	messageKeys      = 16
	agentMessageKeys = 8
)

// mapConvVisitorUser is the author object of the conversation's visitor.
func (s *Surface) mapConvVisitorUser(ctx context.Context, id model.ConvID) map[string]any {
	c, err := s.d.Store().Conversation(ctx, id)
	if err != nil {
		return copyMap(rocketCat)
	}
	return s.mapAuthorUser(ctx, string(model.AuthorVisitor), string(c.Visitor), "")
}

// mapFileFields adds `file` and `attachments` (§5.20) to a file message. Files
// stored elsewhere (other surfaces' absolute URLs) are shown as a link in
// msg, because the widget prefixes attachment links with the server URL.
func (s *Surface) mapFileFields(m map[string]any, e *model.Event) {
	f := e.File
	id, path, ok := parseUploadURL(f.URL)
	if !ok {
		if m["msg"] == "" {
			m["msg"] = f.URL
		}
		return
	}
	m["groupable"] = false
	m["file"] = map[string]any{"_id": id, "name": f.Name, "type": f.ContentType}
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
	m["attachments"] = []any{att}
}

// mapAgentUser is an agent as a message author {_id, username, name}.
func (s *Surface) mapAgentUser(id model.AgentID, fallbackName string) map[string]any {
	a, ok := s.d.Router().Agent(id)
	if !ok {
		m := map[string]any{"_id": string(id), "username": string(id)}
		if fallbackName != "" {
			m["name"] = fallbackName
		}
		return m
	}
	return map[string]any{"_id": string(a.ID), "username": agentUsername(a), "name": a.Name}
}

// mapVisitorUser is a visitor as a message author {_id, username, name}.
func (s *Surface) mapVisitorUser(ctx context.Context, id model.VisitorID, name string) map[string]any {
	m := make(map[string]any, 3)
	m["_id"], m["username"] = string(id), s.username(ctx, id)
	if name != "" {
		m["name"] = name
	}
	return m
}

// mapAuthorUser renders who did something, from an author kind and id.
func (s *Surface) mapAuthorUser(ctx context.Context, kind, id, name string) map[string]any {
	switch model.AuthorKind(kind) {
	case model.AuthorVisitor:
		if name == "" {
			if v, err := s.d.Store().Visitor(ctx, model.VisitorID(id)); err == nil {
				name = v.Name
			}
		}
		return s.mapVisitorUser(ctx, model.VisitorID(id), name)
	case model.AuthorAgent:
		return s.mapAgentUser(model.AgentID(id), name)
	}
	return copyMap(rocketCat)
}

// rocketCat is the author Rocket.Chat shows for system messages.
var rocketCat = map[string]any{"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat"}

// noneList is the empty mentions and channels lists of a message; shared
// (an empty slice: an append cannot write into it).
var noneList any = []any{}
