package visitorv2

import (
	"encoding/json"
	"strconv"

	"chatgate/core/model"
)

// v2Event is one event of a get_pending_messages answer. It is encoded
// by appendEvent, in the bytes encoding/json gives the map this surface
// used to build (keys sorted, <, > and & escaped), without a map, a
// reflection walk or an allocation per field (TestAppendEventMatchesMap,
// FuzzAppendEvent).
type v2Event struct {
	messageID  uint64
	timestamp  int64
	typ        string // "message", "attachment", "agent_details", "chat_closed"
	userType   string
	text       string
	hasText    bool // every type but agent_details carries text, even ""
	authorName string
	file       string // attachment URL: "files": [file]
	reason     string
	agent      *v2Agent
}

type v2Agent struct{ name, jobTitle, avatar string }

// render turns a core event into a v2 pending-message event, or false for
// events the v2 protocol has no way to show (custom events, system notices
// other than welcome, agent joined and closed). Filled forms become a
// text message of "Label: answer" lines, rich messages one of their
// titles and buttons; annotations with text an agent
// message. Documented types are
// "message" and "agent_details"; chatgate adds "chat_closed" (the chat's
// end, with who closed it) and "attachment" (shaped like LiveChat's v2
// archive events), both listed in the README.
func (s *Surface) render(e *model.Event) (v2Event, bool) {
	if !e.VisibleToVisitor() {
		return v2Event{}, false
	}
	m := v2Event{messageID: e.Seq, timestamp: e.At.Unix(), userType: "agent"}
	if e.Author.Kind == model.AuthorVisitor {
		m.userType = "visitor"
	}
	text := func(t string) { m.typ, m.text, m.hasText = "message", t, true }
	switch e.Kind {
	case model.KindMessage:
		text(e.Text)
		if e.Author.Kind == model.AuthorAgent {
			m.authorName = e.Author.Name
		}
	case model.KindFile:
		m.typ, m.text, m.hasText, m.file = "attachment", e.File.Name, true, e.File.URL
	case model.KindForm:
		// v2 has no form event: the answers as a text message.
		if e.Form == nil || len(e.Form.Fields) == 0 {
			return v2Event{}, false
		}
		text(e.Form.Summary())
	case model.KindRich:
		// v2 has no rich message: its titles and buttons as text.
		t := model.RichText(e.Custom)
		if t == "" {
			return v2Event{}, false
		}
		text(t)
	case model.KindAnnotation:
		if e.Text == "" {
			return v2Event{}, false
		}
		text(e.Text)
		m.userType = "agent"
	case model.KindSystem:
		switch e.Subtype {
		case model.SysWelcome:
			// LiveChat shows the welcome message in the agent's bubble.
			text(e.Text)
			m.userType = "agent"
		case model.SysAssigned:
			a, _ := s.d.Router().Agent(model.AgentID(e.Vars["agent_id"]))
			name := a.Name
			if name == "" {
				name = e.Vars["agent_name"]
			}
			m.typ, m.userType = "agent_details", "agent"
			m.agent = &v2Agent{name: name, jobTitle: a.JobTitle, avatar: a.Avatar}
		case model.SysClosed:
			m.typ, m.text, m.hasText, m.reason = "chat_closed", e.Text, true, e.Vars["reason"]
			switch e.Vars["by_kind"] {
			case string(model.AuthorVisitor):
				m.userType = "visitor"
			case string(model.AuthorAgent):
				m.userType = "agent"
			default:
				m.userType = "system"
			}
		default:
			return v2Event{}, false
		}
	default:
		return v2Event{}, false
	}
	return m, true
}

// appendEvent appends e as a JSON object, keys in encoding/json's map
// order (sorted), absent fields left out as the map left them out.
func appendEvent(b []byte, e *v2Event) []byte {
	b = append(b, '{')
	if e.agent != nil {
		b = append(b, `"agent":{"avatar":`...)
		b = appendString(b, e.agent.avatar)
		b = append(b, `,"job_title":`...)
		b = appendString(b, e.agent.jobTitle)
		b = append(b, `,"name":`...)
		b = appendString(b, e.agent.name)
		b = append(b, "},"...)
	}
	if e.authorName != "" {
		b = append(b, `"author_name":`...)
		b = appendString(b, e.authorName)
		b = append(b, ',')
	}
	if e.typ == "attachment" {
		b = append(b, `"files":[`...)
		b = appendString(b, e.file)
		b = append(b, "],"...)
	}
	b = append(b, `"message_id":`...)
	b = strconv.AppendUint(b, e.messageID, 10)
	if e.reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.reason)
	}
	if e.hasText {
		b = append(b, `,"text":`...)
		b = appendString(b, e.text)
	}
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.timestamp, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, e.typ)
	b = append(b, `,"user_type":`...)
	b = appendString(b, e.userType)
	return append(b, '}')
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it: a string of printable ASCII with nothing to escape (what nearly
// every chat line is) is copied between quotes; anything else is left to
// encoding/json, so escaping (HTML characters, U+2028, invalid UTF-8)
// cannot drift from what clients got before.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
