package wire

import (
	"strconv"

	"chatgate/adapters/internal/jsonstr"
)

// The frames every relayed message causes (send_event's response, the
// incoming_event push to the customer and to the agent, a ping's
// response) are rendered here by appending into one buffer, without
// encoding/json's reflection, its intermediate buffer and the copy that
// trimmed its newline: that was most of Encode's cost, and Encode ran four
// times per relayed message. The output is byte for byte encoding/json's
// (SetEscapeHTML(false)), key order and escaping included:
// FuzzEncodeMatchesStd and TestEncodeMatchesStd compare the two. Anything
// else (and any event with properties, text_vars, form fields or raw
// content) still goes through encoding/json.

// appendFrame renders a Response or Push whose payload appendPayload
// renders.
func appendFrame(frame any) ([]byte, bool) {
	switch f := frame.(type) {
	case Response:
		return appendResponse(&f)
	case Push:
		return appendPush(&f)
	}
	return nil, false
}

func appendResponse(f *Response) ([]byte, bool) {
	n, ok := payloadSize(f.Payload)
	if !ok {
		return nil, false
	}
	dst := make([]byte, 0, 64+n+jsonSize(f.RequestID)+jsonSize(f.Action)+jsonSize(f.Type))
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, f.RequestID)
	dst = append(dst, `,"action":`...)
	dst = appendString(dst, f.Action)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, f.Type)
	if f.Success {
		dst = append(dst, `,"success":true,"payload":`...)
	} else {
		dst = append(dst, `,"success":false,"payload":`...)
	}
	dst = appendPayload(dst, f.Payload)
	return append(dst, '}'), true
}

func appendPush(f *Push) ([]byte, bool) {
	n, ok := payloadSize(f.Payload)
	if !ok {
		return nil, false
	}
	dst := appendPushHead(f, n)
	dst = appendPayload(dst, f.Payload)
	return append(dst, '}'), true
}

// appendPushHead starts the buffer of push f, sized for a payload of
// about n bytes, up to its payload.
func appendPushHead(f *Push, n int) []byte {
	dst := make([]byte, 0, 64+n+jsonSize(f.Version)+jsonSize(f.RequestID)+jsonSize(f.Action)+jsonSize(f.Type))
	dst = append(dst, '{')
	if f.Version != "" {
		dst = append(dst, `"version":`...)
		dst = appendString(dst, f.Version)
		dst = append(dst, ',')
	}
	if f.RequestID != "" {
		dst = append(dst, `"request_id":`...)
		dst = appendString(dst, f.RequestID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"action":`...)
	dst = appendString(dst, f.Action)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, f.Type)
	return append(dst, `,"payload":`...)
}

// EncodeEventPush is EncodePush of NewPush(version, requestID, action, *p)
// (an incoming_event or event_updated push), byte for byte, without
// boxing the payload: an IncomingEvent copied into the push's interface
// was an allocation of its own (~450 bytes) for every push of every
// relayed message, to the customer and to the agent. A plain event costs
// the frame's buffer alone; p does not escape.
func EncodeEventPush(version, requestID, action string, p *IncomingEvent) ([]byte, error) {
	if p.Event.plain() {
		head := Push{Version: version, RequestID: requestID, Action: action, Type: TypePush}
		dst := appendPushHead(&head, incomingEventSize(p))
		dst = appendIncomingEvent(dst, p)
		return append(dst, '}'), nil
	}
	return stdEncode(&Push{Version: version, RequestID: requestID, Action: action, Type: TypePush, Payload: *p})
}

// jsonSize is the size of s as a JSON string when it needs no escapes
// (a guess that sizes the buffer; escapes only make it grow).
func jsonSize(s string) int { return len(s) + 2 }

// payloadSize reports whether appendPayload renders p, and about how many
// bytes it takes.
func payloadSize(p any) (int, bool) {
	switch p := p.(type) {
	case Empty:
		return 2, true
	case SendEventResponse:
		return 16 + jsonSize(p.EventID), true
	case IncomingEvent:
		if !p.Event.plain() {
			return 0, false
		}
		return incomingEventSize(&p), true
	}
	return 0, false
}

// appendPayload renders a payload payloadSize accepted.
func appendPayload(dst []byte, p any) []byte {
	switch p := p.(type) {
	case Empty:
		return append(dst, "{}"...)
	case SendEventResponse:
		dst = append(dst, `{"event_id":`...)
		dst = appendString(dst, p.EventID)
		return append(dst, '}')
	case IncomingEvent:
		return appendIncomingEvent(dst, &p)
	}
	return dst
}

// incomingEventSize is about the size of p's JSON when its event is plain.
func incomingEventSize(p *IncomingEvent) int {
	return 40 + jsonSize(p.ChatID) + jsonSize(p.ThreadID) + p.Event.size()
}

// appendIncomingEvent renders p, whose event is plain.
func appendIncomingEvent(dst []byte, p *IncomingEvent) []byte {
	dst = append(dst, `{"chat_id":`...)
	dst = appendString(dst, p.ChatID)
	dst = append(dst, `,"thread_id":`...)
	dst = appendString(dst, p.ThreadID)
	dst = append(dst, `,"event":`...)
	dst = p.Event.appendJSON(dst)
	return append(dst, '}')
}

// SendEventResponse is send_event's payload (both APIs).
type SendEventResponse struct {
	EventID string `json:"event_id"`
}

// plain reports whether e has no field rendered from a map, a list or raw
// JSON, so that appendJSON renders it.
func (e *Event) plain() bool {
	return len(e.Properties) == 0 && len(e.TextVars) == 0 && len(e.Fields) == 0 && len(e.Content) == 0 && len(e.Elements) == 0
}

// size is about the size of a plain event's JSON.
func (e *Event) size() int {
	n := 0
	for _, s := range [...]string{e.ID, e.CustomID, e.Type, e.AuthorID, e.CreatedAt, e.Visibility, e.Text,
		e.SystemMessageType, e.Name, e.URL, e.ContentType, e.FormID, e.FormType, e.TemplateID} {
		if s != "" {
			n += 24 + len(s) // key, quotes, separators
		}
	}
	return n + 48 // numbers, braces
}

// appendJSON renders a plain event as encoding/json does, field by field
// in the struct's order with its omitempty rules.
func (e *Event) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = appendOptString(dst, `,"custom_id":`, e.CustomID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = appendOptString(dst, `,"author_id":`, e.AuthorID)
	dst = append(dst, `,"created_at":`...)
	dst = appendString(dst, e.CreatedAt)
	dst = appendOptString(dst, `,"visibility":`, e.Visibility)
	dst = appendOptString(dst, `,"text":`, e.Text)
	dst = appendOptString(dst, `,"system_message_type":`, e.SystemMessageType)
	dst = appendOptString(dst, `,"name":`, e.Name)
	dst = appendOptString(dst, `,"url":`, e.URL)
	dst = appendOptString(dst, `,"content_type":`, e.ContentType)
	if e.Size != 0 {
		dst = strconv.AppendInt(append(dst, `,"size":`...), e.Size, 10)
	}
	if e.Width != 0 {
		dst = strconv.AppendInt(append(dst, `,"width":`...), int64(e.Width), 10)
	}
	if e.Height != 0 {
		dst = strconv.AppendInt(append(dst, `,"height":`...), int64(e.Height), 10)
	}
	dst = appendOptString(dst, `,"form_id":`, e.FormID)
	dst = appendOptString(dst, `,"form_type":`, e.FormType)
	dst = appendOptString(dst, `,"template_id":`, e.TemplateID)
	return append(dst, '}')
}

// appendOptString appends key and s unless s is empty (omitempty).
func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

// appendString appends s as a JSON string the way encoding/json does
// without HTML escaping.
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, false) }
