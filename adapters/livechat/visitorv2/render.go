package visitorv2

import "chatgate/core/model"

// render turns a core event into a v2 pending-message event, or nil for
// events the v2 protocol has no way to show (custom events, system notices
// other than welcome, agent joined and closed). Filled forms become a
// text message of "Label: answer" lines, rich messages one of their
// titles and buttons; annotations with text an agent
// message. Documented types are
// "message" and "agent_details"; chatgate adds "chat_closed" (the chat's
// end, with who closed it) and "attachment" (shaped like LiveChat's v2
// archive events), both listed in the README.
func (s *Surface) render(e *model.Event) map[string]any {
	if !e.VisibleToVisitor() {
		return nil
	}
	m := map[string]any{"message_id": e.Seq, "timestamp": e.At.Unix()}
	userType := func() string {
		if e.Author.Kind == model.AuthorVisitor {
			return "visitor"
		}
		return "agent"
	}
	switch e.Kind {
	case model.KindMessage:
		m["type"], m["user_type"], m["text"] = "message", userType(), e.Text
		if e.Author.Kind == model.AuthorAgent && e.Author.Name != "" {
			m["author_name"] = e.Author.Name
		}
	case model.KindFile:
		m["type"], m["user_type"] = "attachment", userType()
		m["text"] = e.File.Name
		m["files"] = []string{e.File.URL}
	case model.KindForm:
		// v2 has no form event: the answers as a text message.
		if e.Form == nil || len(e.Form.Fields) == 0 {
			return nil
		}
		m["type"], m["user_type"], m["text"] = "message", userType(), e.Form.Summary()
	case model.KindRich:
		// v2 has no rich message: its titles and buttons as text.
		text := model.RichText(e.Custom)
		if text == "" {
			return nil
		}
		m["type"], m["user_type"], m["text"] = "message", userType(), text
	case model.KindAnnotation:
		if e.Text == "" {
			return nil
		}
		m["type"], m["user_type"], m["text"] = "message", "agent", e.Text
	case model.KindSystem:
		switch e.Subtype {
		case model.SysWelcome:
			// LiveChat shows the welcome message in the agent's bubble.
			m["type"], m["user_type"], m["text"] = "message", "agent", e.Text
		case model.SysAssigned:
			a, _ := s.d.Router().Agent(model.AgentID(e.Vars["agent_id"]))
			name := a.Name
			if name == "" {
				name = e.Vars["agent_name"]
			}
			m["type"], m["user_type"] = "agent_details", "agent"
			m["agent"] = map[string]any{"name": name, "job_title": a.JobTitle, "avatar": a.Avatar}
		case model.SysClosed:
			m["type"], m["text"] = "chat_closed", e.Text
			switch e.Vars["by_kind"] {
			case string(model.AuthorVisitor):
				m["user_type"] = "visitor"
			case string(model.AuthorAgent):
				m["user_type"] = "agent"
			default:
				m["user_type"] = "system"
			}
			if r := e.Vars["reason"]; r != "" {
				m["reason"] = r
			}
		default:
			return nil
		}
	default:
		return nil
	}
	return m
}
