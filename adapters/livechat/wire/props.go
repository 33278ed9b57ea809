package wire

import (
	"encoding/json"

	"chatgate/core/desk"
	"chatgate/core/hub"
	"chatgate/core/model"
)

// PropsAction is one of the six property actions (§2.5, §2.7):
// update_/delete_ chat/thread/event _properties.
type PropsAction struct {
	Location desk.PropLocation
	Delete   bool
}

// PropsActions maps the action names to what they do; the customer and the
// agent tables both register them.
var PropsActions = map[string]PropsAction{
	"update_chat_properties":   {Location: desk.LocChat},
	"delete_chat_properties":   {Location: desk.LocChat, Delete: true},
	"update_thread_properties": {Location: desk.LocThread},
	"delete_thread_properties": {Location: desk.LocThread, Delete: true},
	"update_event_properties":  {Location: desk.LocEvent},
	"delete_event_properties":  {Location: desk.LocEvent, Delete: true},
}

type propsRequest struct {
	ID         string          `json:"id"`
	ChatID     string          `json:"chat_id"`
	ThreadID   string          `json:"thread_id"`
	EventID    string          `json:"event_id"`
	Properties json.RawMessage `json:"properties"`
}

// PropsRequest is a decoded property action: the chat it names, the
// target (Conv and Seq set for thread and event), and the values to set
// or the names to delete.
type PropsRequest struct {
	ChatID string
	Target desk.PropTarget
	Set    map[string]map[string]json.RawMessage
	Delete map[string][]string
}

// DecodePropsRequest reads a property action's payload: chat actions take
// id, thread actions chat_id and thread_id, event actions chat_id,
// thread_id and event_id; properties is {ns: {name: value}} for updates
// and {ns: [names]} for deletions. Errors are validation errors.
func DecodePropsRequest(req *Request, a PropsAction) (PropsRequest, error) {
	var p propsRequest
	if err := DecodePayload(req, &p); err != nil {
		return PropsRequest{}, err
	}
	out := PropsRequest{Target: desk.PropTarget{Location: a.Location}}
	switch a.Location {
	case desk.LocChat:
		if p.ID == "" {
			return out, Errorf(Validation, "id is required")
		}
		out.ChatID = p.ID
	case desk.LocThread, desk.LocEvent:
		if p.ChatID == "" || p.ThreadID == "" {
			return out, Errorf(Validation, "chat_id and thread_id are required")
		}
		out.ChatID, out.Target.Conv = p.ChatID, model.ConvID(p.ThreadID)
		if a.Location == desk.LocEvent {
			if p.EventID == "" {
				return out, Errorf(Validation, "event_id is required")
			}
			conv, seq, ok := ParseEventID(p.EventID)
			if !ok || conv != out.Target.Conv {
				return out, Errorf(NotFound, "Event not found")
			}
			out.Target.Seq = seq
		}
	}
	out.Target.Visitor = model.VisitorID(out.ChatID)
	if len(p.Properties) == 0 || string(p.Properties) == "null" {
		return out, Errorf(Validation, "properties is required")
	}
	if a.Delete {
		if err := json.Unmarshal(p.Properties, &out.Delete); err != nil {
			return out, Errorf(Validation, "Wrong format of request: properties must be {namespace: [names]}")
		}
		if len(out.Delete) == 0 {
			return out, Errorf(Validation, "properties is required")
		}
		return out, nil
	}
	if err := json.Unmarshal(p.Properties, &out.Set); err != nil {
		return out, Errorf(Validation, "Wrong format of request: properties must be {namespace: {name: value}}")
	}
	if len(out.Set) == 0 {
		return out, Errorf(Validation, "properties is required")
	}
	return out, nil
}

// PropsPush is the payload of the *_properties_updated/_deleted pushes:
// chat ones carry chat_id, thread ones thread_id too, event ones event_id
// too. Properties is {ns: {name: value}} (only changed keys) or
// {ns: [names]}.
type PropsPush struct {
	ChatID     string `json:"chat_id"`
	ThreadID   string `json:"thread_id,omitempty"`
	EventID    string `json:"event_id,omitempty"`
	Properties any    `json:"properties"`
}

// RenderPropsPush renders a property change for aud: the push name and
// payload, with only what aud may read under reg. ok is false when aud
// may read none of it (nothing to push), or when the change is of an
// agents-only event and aud is a customer.
func RenderPropsPush(ch *hub.PropsChange, aud Audience, reg *desk.Properties) (name string, p PropsPush, ok bool) {
	loc := desk.PropLocation(ch.Location)
	if loc == desk.LocEvent && aud == ForCustomer && ch.Visibility == model.VisibleAgents {
		return "", p, false
	}
	p.ChatID = string(ch.Visitor)
	if loc != desk.LocChat {
		p.ThreadID = string(ch.Conv)
	}
	if loc == desk.LocEvent {
		p.EventID = EventID(ch.Conv, ch.Seq)
	}
	if ch.Updated != nil {
		set := ReadableProps(reg, aud, loc, ch.Updated)
		if len(set) == 0 {
			return "", p, false
		}
		p.Properties = set
		return ch.Location + "_properties_updated", p, true
	}
	names := ch.Deleted
	if reg != nil {
		names = reg.ReadableNames(aud.PropRole(), loc, ch.Deleted)
	}
	if len(names) == 0 {
		return "", p, false
	}
	p.Properties = names
	return ch.Location + "_properties_deleted", p, true
}

// DecodeInitialProps reads the properties of start_chat / resume_chat
// (chat.properties, chat.thread.properties): absent or null is none;
// anything but {ns: {name: value}} is a validation error. Access is the
// desk's to check (desk.StartRequest.ChatProps, ThreadProps).
func DecodeInitialProps(raw json.RawMessage, where string) (map[string]map[string]json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var out map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, Errorf(Validation, "Wrong format of request: %s must be {namespace: {name: value}}", where)
	}
	return out, nil
}
