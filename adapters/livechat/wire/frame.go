// Package wire holds what every LiveChat v3.x surface of chatgate shares:
// the RTM frame envelope (spec §2.2), the error type table (§2.9), a
// transport-free action table (one handler per action name, usable by RTM
// sessions and the Web API alike) and renderers of core conversations into
// LiveChat Chat / Thread / Event / User JSON (§2.4).
//
// ID vocabulary (DESIGN.md): a LiveChat chat is the core visitor
// (chat_id = visitor id, customer id = visitor id), a thread is a core
// conversation (thread_id = conversation id), an event id is
// "<thread_id>_<seq>", an agent id is the configured agent id.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Frame types.
const (
	TypeResponse = "response"
	TypePush     = "push"
)

// Request is a client frame:
// {"request_id","action","payload"?,"version"?,"author_id"?}.
type Request struct {
	RequestID string
	Action    string
	// Payload is the raw payload object; nil when absent or null.
	Payload json.RawMessage
	// Version is the optional per-request API version (v3.3+).
	Version string
	// AuthorID is the legacy bot author (v0.5–3.4 agent API).
	AuthorID string

	// checked: Payload was cut from a frame already validated as JSON,
	// so DecodeEventPayload need not scan it again.
	checked bool
}

// Response answers one request. RequestID is always present (empty when the
// request had none or could not be parsed) because clients match on it.
type Response struct {
	RequestID string `json:"request_id"`
	Action    string `json:"action"`
	Type      string `json:"type"`
	Success   bool   `json:"success"`
	Payload   any    `json:"payload"`
}

// Push is a server-initiated frame. RequestID is set only on the connection
// whose request caused the push.
type Push struct {
	Version   string `json:"version,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Action    string `json:"action"`
	Type      string `json:"type"`
	Payload   any    `json:"payload"`
}

// NewPush returns a push frame.
func NewPush(version, requestID, action string, payload any) Push {
	return Push{Version: version, RequestID: requestID, Action: action, Type: TypePush, Payload: payload}
}

// Empty is the payload of methods with "no response payload": {}.
type Empty struct{}

// OK returns a success response to req.
func OK(req *Request, payload any) Response {
	if payload == nil {
		payload = Empty{}
	}
	return Response{RequestID: req.RequestID, Action: req.Action, Type: TypeResponse, Success: true, Payload: payload}
}

// Fail returns an error response to req: payload {"error":{type,message}}.
func Fail(req *Request, e *Error) Response {
	return Response{RequestID: req.RequestID, Action: req.Action, Type: TypeResponse, Payload: errorPayload{e}}
}

type errorPayload struct {
	Error *Error `json:"error"`
}

// DecodeRequest parses a client frame. It never panics. On failure it
// returns a validation error and a Request carrying whatever request_id and
// action could still be read, so that the error response can echo them.
func DecodeRequest(b []byte) (*Request, *Error) { return decodeRequest(b, true) }

// decodeRequest is DecodeRequest; fast false skips goccy (for
// FuzzDecodeRequestPaths, which checks that both paths agree).
func decodeRequest(b []byte, fast bool) (*Request, *Error) {
	req := &Request{}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, Errorf(Validation, "Wrong format of request: frame is not a JSON object")
	}
	if err := validJSON(trimmed); err != nil {
		return req, Errorf(Validation, "Wrong format of request: %s", jsonProblem(err))
	}
	req.checked = true
	// Nearly every frame has string fields: goccy decodes them in one
	// pass. Anything else (a field of another type, a frame goccy refuses
	// or one that is not UTF-8) takes the field-by-field path below, which
	// says which field is wrong. goccy's strings alias its copy of the
	// frame: request_id, action, version and author_id are only used while
	// the request and the pushes it defers are answered (ticket origins
	// are concatenated copies), so none of them outlives the frame long.
	var strs struct {
		RequestID string          `json:"request_id"`
		Action    string          `json:"action"`
		Payload   json.RawMessage `json:"payload"`
		Version   string          `json:"version"`
		AuthorID  string          `json:"author_id"`
	}
	var payload json.RawMessage
	if fast && utf8.Valid(trimmed) && fastUnmarshal(trimmed, &strs) == nil {
		req.RequestID, req.Action = strs.RequestID, strs.Action
		if req.Action == "" {
			return req, Errorf(Validation, "action is required")
		}
		req.Version, req.AuthorID = strs.Version, strs.AuthorID
		payload = strs.Payload
	} else {
		var werr *Error
		if payload, werr = decodeEnvelope(trimmed, req); werr != nil {
			return req, werr
		}
	}
	if p := bytes.TrimSpace(payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		if p[0] != '{' {
			return req, Errorf(Validation, "payload must be an object")
		}
		req.Payload = p
	}
	return req, nil
}

// validJSON is encoding/json's verdict on b, with its SyntaxError.
func validJSON(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v struct{}
	return json.Unmarshal(b, &v)
}

// decodeEnvelope reads the envelope of valid JSON b field by field into
// req, naming the first field of the wrong type, and returns the raw
// payload.
func decodeEnvelope(b []byte, req *Request) (json.RawMessage, *Error) {
	var raw struct {
		RequestID json.RawMessage `json:"request_id"`
		Action    json.RawMessage `json:"action"`
		Payload   json.RawMessage `json:"payload"`
		Version   json.RawMessage `json:"version"`
		AuthorID  json.RawMessage `json:"author_id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, Errorf(Validation, "Wrong format of request: %s", jsonProblem(err))
	}
	// request_id first, so that later failures can still be answered.
	if err := optString(raw.RequestID, &req.RequestID); err != nil {
		return nil, Errorf(Validation, "request_id must be a string")
	}
	if err := optString(raw.Action, &req.Action); err != nil {
		return nil, Errorf(Validation, "action must be a string")
	}
	if req.Action == "" {
		return nil, Errorf(Validation, "action is required")
	}
	if err := optString(raw.Version, &req.Version); err != nil {
		return nil, Errorf(Validation, "version must be a string")
	}
	if err := optString(raw.AuthorID, &req.AuthorID); err != nil {
		return nil, Errorf(Validation, "author_id must be a string")
	}
	return raw.Payload, nil
}

// PeekRequest extracts request_id and action from a frame too large to be
// handled, so that its error response can still be matched. It gives up
// silently on anything malformed.
func PeekRequest(b []byte) *Request {
	var head struct {
		RequestID any `json:"request_id"`
		Action    any `json:"action"`
	}
	req := &Request{}
	if Unmarshal(b, &head) == nil {
		req.RequestID, _ = head.RequestID.(string)
		req.Action, _ = head.Action.(string)
	}
	return req
}

// optString reads an envelope field already checked to be valid JSON. A
// plain string (no escapes, valid UTF-8: nearly every request id and
// action) is taken as is, without a decoder.
func optString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && plainString(raw[1:n-1]) {
		*dst = string(raw[1 : n-1])
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// plainString reports whether s, the inside of a JSON string literal,
// decodes to itself: printable ASCII with no backslash or quote.
func plainString(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// DecodePayload unmarshals req's payload into v (a pointer to a struct
// whose fields carry the action's parameters). An absent payload leaves v
// as is. Unknown fields are ignored (clients send more than we use); a
// field of the wrong JSON type is a validation error naming the field.
//
// It decodes with encoding/json, so every string in v owns its bytes and
// a handler may keep any of them for as long as it likes: login's push
// names in the session's filter, thread and chat properties and tags in
// the store's conversation cache, and so on. goccy's strings (see
// DecodeEventPayload) would each pin the whole payload.
func DecodePayload(req *Request, v any) error {
	return decodePayload(req, v, json.Unmarshal)
}

// DecodeEventPayload is DecodePayload through goccy (Unmarshal), about
// twice as fast, for send_event, the action every relayed message makes.
// Every string it decodes aliases goccy's copy of the payload, so keeping
// any of them keeps all of it (up to the frame limit, 64 KiB). send_event's
// strings (chat id, the event's type, text, custom id, properties' keys,
// URL, form fields) are read during the request or become the event the
// desk commits and publishes, which stays in memory only until its pushes
// are written (the bus's bounded queues) and whose text is most of the
// payload anyway; nothing of it is kept beyond that. An action that keeps
// a decoded string must use DecodePayload (or strings.Clone what it keeps).
func DecodeEventPayload(req *Request, v any) error {
	decode := Unmarshal
	if req.checked {
		decode = unmarshalValid
	}
	return decodePayload(req, v, decode)
}

func decodePayload(req *Request, v any, decode func([]byte, any) error) error {
	if len(req.Payload) == 0 {
		return nil
	}
	if err := decode(req.Payload, v); err != nil {
		return Errorf(Validation, "Wrong format of request: %s", jsonProblem(err))
	}
	return nil
}

// jsonProblem describes a decoding error without echoing client data.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return fmt.Sprintf("%s must be %s", e.Field, jsonKind(e.Type.Kind().String()))
		}
		return "unexpected " + e.Value
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at offset %d", e.Offset)
	default:
		return "invalid JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr", "interface":
		return "an object"
	default:
		return "of another type"
	}
}

// Encode marshals a frame without HTML escaping (frames are not HTML, and
// message texts should reach clients byte-for-byte).
func Encode(frame any) ([]byte, error) {
	if b, ok := appendFrame(frame); ok {
		return b, nil
	}
	return stdEncode(frame)
}

// EncodeResponse is Encode for a response, without boxing it.
func EncodeResponse(r *Response) ([]byte, error) {
	if b, ok := appendResponse(r); ok {
		return b, nil
	}
	return stdEncode(r)
}

// EncodePush is Encode for a push, without boxing it.
func EncodePush(p *Push) ([]byte, error) {
	if b, ok := appendPush(p); ok {
		return b, nil
	}
	return stdEncode(p)
}

// stdEncode is Encode through encoding/json, for every frame appendFrame
// does not render itself.
func stdEncode(frame any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(frame); err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
