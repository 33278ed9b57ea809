package ddp

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Versions the server speaks, in Meteor's order of preference
// (DDPCommon.SUPPORTED_DDP_VERSIONS). Their differences (pre1 has no
// ping/pong) do not matter to Rocket.Chat clients, which all send "1".
var Versions = []string{"1", "pre2", "pre1"}

// ErrNotObject is DecodeFrame's error for a frame that is not a JSON
// object. Meteor's parseDDP returns null for it and the server answers
// {"msg":"error","reason":"Bad request"}.
var ErrNotObject = errors.New("ddp: frame is not a JSON object")

// Message is one decoded client frame. As in Meteor's parseDDP, the values
// of "params", "fields" and "result" are EJSON-decoded (time.Time, []byte
// ...); the other keys are plain JSON. Accessors never panic, whatever the
// frame holds.
type Message struct {
	fields map[string]any
}

// DecodeFrame parses one text frame. A frame that is not a JSON object
// fails with ErrNotObject (Meteor: "Bad request"); one whose EJSON is
// malformed or uses an undefined custom type fails with ErrEJSON or
// ErrUnsupported (Meteor: "Parse error").
func DecodeFrame(data []byte) (*Message, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, ErrNotObject
	}
	for _, k := range [...]string{"params", "fields", "result"} {
		if v, ok := m[k]; ok {
			d, err := FromJSONValue(v)
			if err != nil {
				return nil, err
			}
			m[k] = d
		}
	}
	return &Message{fields: m}, nil
}

// NewMessage wraps already-decoded fields (for tests and in-process use).
func NewMessage(fields map[string]any) *Message { return &Message{fields: fields} }

// Msg is the frame's "msg", "" when absent or not a string.
func (m *Message) Msg() string { s, _ := m.Str("msg"); return s }

// Has reports whether the frame has key k.
func (m *Message) Has(k string) bool { _, ok := m.fields[k]; return ok }

// Get returns key k's value (nil when absent).
func (m *Message) Get(k string) any { return m.fields[k] }

// Str returns key k when it is a string.
func (m *Message) Str(k string) (string, bool) {
	s, ok := m.fields[k].(string)
	return s, ok
}

// ID returns the frame's "id" when it is a string.
func (m *Message) ID() (string, bool) { return m.Str("id") }

// Params returns "params": nil when absent, ok=false when present but not
// an array (Meteor: malformed).
func (m *Message) Params() ([]any, bool) {
	v, present := m.fields["params"]
	if !present {
		return nil, true
	}
	a, ok := v.([]any)
	return a, ok
}

// Support returns the strings of a connect frame's "support"; ok is false
// when it is missing, not an array, or holds a non-string.
func (m *Message) Support() ([]string, bool) {
	a, ok := m.fields["support"].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// Fields returns the decoded frame (for offendingMessage echoes). The map
// is the Message's own: do not modify it.
func (m *Message) Fields() map[string]any { return m.fields }

// NegotiateVersion applies Meteor's _handleConnect rules to a connect
// frame: the proposed version must be a string listed in support (all
// strings); the version used is the first of the client's support that the
// server speaks, or the server's first. ok is false when the client must
// be answered `failed` with version and disconnected.
func NegotiateVersion(m *Message) (version string, ok bool) {
	proposed, isStr := m.Str("version")
	support, valid := m.Support()
	if !isStr || !valid || !contains(support, proposed) {
		return Versions[0], false
	}
	version = Versions[0]
	for _, v := range support {
		if contains(Versions, v) {
			version = v
			break
		}
	}
	return version, version == proposed
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// --- Meteor.Error ----------------------------------------------------------------

// Error is a client-safe Meteor.Error as DDP carries it in `result`,
// `nosub` and similar frames.
type Error struct {
	// Code is the `error` field: a string ("not-allowed") or a number
	// (400, 404, 500).
	Code    any
	Reason  string
	Details any
}

// Error is Meteor's message: "reason [code]", or "[code]" without reason.
func (e *Error) Error() string {
	code := fmt.Sprint(e.Code)
	if e.Reason == "" {
		return "[" + code + "]"
	}
	return e.Reason + " [" + code + "]"
}

// Value is the serialised error object.
func (e *Error) Value() Obj {
	o := Obj{{"isClientSafe", true}, {"error", e.Code}}
	if e.Reason != "" {
		o = append(o, KV{"reason", e.Reason})
	}
	if e.Details != nil {
		o = append(o, KV{"details", e.Details})
	}
	return append(o, KV{"message", e.Error()}, KV{"errorType", "Meteor.Error"})
}

// NewError returns a Meteor.Error with a string code.
func NewError(code, reason string) *Error { return &Error{Code: code, Reason: reason} }

// Standard errors of Meteor's server.
func MethodNotFound(name string) *Error {
	return &Error{Code: 404, Reason: "Method '" + name + "' not found"}
}

func SubscriptionNotFound(name string) *Error {
	return &Error{Code: 404, Reason: "Subscription '" + name + "' not found"}
}

// MatchFailed is what check() failures become (audit-argument-checks).
func MatchFailed() *Error { return &Error{Code: 400, Reason: "Match failed"} }

// InternalError is what any error that is not client-safe becomes.
func InternalError() *Error { return &Error{Code: 500, Reason: "Internal server error"} }

// --- server frames -------------------------------------------------------------

// noResult marks a method that returned undefined.
type noResult struct{}

// NoResult as a method's result omits the "result" key (JavaScript's
// undefined); nil sends "result":null.
var NoResult any = noResult{}

func mustMarshal(o Obj) []byte {
	b, err := Marshal(o)
	if err != nil {
		// Only strings and ordered objects of strings reach here.
		panic("ddp: marshal of a fixed frame: " + err.Error())
	}
	return b
}

// ServerID is Meteor's legacy welcome frame, sent when the socket opens.
func ServerID() []byte { return []byte(`{"server_id":"0"}`) }

// Connected answers a successful connect.
func Connected(session string) []byte {
	return mustMarshal(Obj{{"msg", "connected"}, {"session", session}})
}

// Failed answers a connect whose version cannot be used.
func Failed(version string) []byte {
	return mustMarshal(Obj{{"msg", "failed"}, {"version", version}})
}

// Ping is a heartbeat request; id may be empty.
func Ping(id string) []byte {
	if id == "" {
		return []byte(`{"msg":"ping"}`)
	}
	return mustMarshal(Obj{{"msg", "ping"}, {"id", id}})
}

// Pong answers a ping, echoing its id when it had one.
func Pong(id string) []byte {
	if id == "" {
		return []byte(`{"msg":"pong"}`)
	}
	return mustMarshal(Obj{{"msg", "pong"}, {"id", id}})
}

// Ready reports subscriptions whose initial data has been sent.
func Ready(subs ...string) []byte {
	return mustMarshal(Obj{{"msg", "ready"}, {"subs", subs}})
}

// Updated reports methods whose writes have been committed.
func Updated(methods ...string) []byte {
	return mustMarshal(Obj{{"msg", "updated"}, {"methods", methods}})
}

// NoSub ends a subscription, with err when it was refused or failed.
func NoSub(id string, err *Error) []byte {
	o := Obj{{"msg", "nosub"}, {"id", id}}
	if err != nil {
		o = append(o, KV{"error", err.Value()})
	}
	return mustMarshal(o)
}

// Result answers a method with its value (NoResult: no "result" key).
func Result(id string, result any) ([]byte, error) {
	o := Obj{{"msg", "result"}, {"id", id}}
	if result != NoResult {
		o = append(o, KV{"result", result})
	}
	return Marshal(o)
}

// ResultError answers a method with an error.
func ResultError(id string, err *Error) []byte {
	return mustMarshal(Obj{{"msg", "result"}, {"id", id}, {"error", err.Value()}})
}

// Changed is a data frame: fields of document id in collection changed.
// Rocket.Chat's streams send {"eventName": …, "args": […]} with id "id"
// (StreamChanged writes those without building the object).
func Changed(collection, id string, fields any) ([]byte, error) {
	return dataFrame(`{"msg":"changed","collection":`, collection, id, fields)
}

// Added is a data frame: document id of collection appeared with fields.
// Rocket.Chat sends it only for stream subscriptions asking useCollection.
func Added(collection, id string, fields any) ([]byte, error) {
	return dataFrame(`{"msg":"added","collection":`, collection, id, fields)
}

// StreamChanged is the `changed` frame of one Rocket.Chat stream event:
// Changed(collection, "id", {"eventName": event, "args": args}), written
// in one pass (every chat message a session follows is one).
func StreamChanged(collection, event string, args []any) ([]byte, error) {
	e := encoder{}
	e.buf.Grow(marshalStart)
	e.buf.WriteString(`{"msg":"changed","collection":`)
	writeString(&e.buf, collection)
	e.buf.WriteString(`,"id":"id","fields":{"eventName":`)
	writeString(&e.buf, event)
	e.buf.WriteString(`,"args":`)
	if err := e.value(args, 2); err != nil {
		return nil, err
	}
	e.buf.WriteString(`}}`)
	return e.buf.Bytes(), nil
}

// StreamChangedArg is StreamChanged(collection, event, []any{arg}) for
// an argument that writes itself (a rendered chat message), without the
// argument list; its buffer starts at streamArgStart.
func StreamChangedArg(collection, event string, arg Appender) ([]byte, error) {
	dst := make([]byte, 0, streamArgStart)
	dst = append(dst, `{"msg":"changed","collection":`...)
	dst = AppendString(dst, collection)
	dst = append(dst, `,"id":"id","fields":{"eventName":`...)
	dst = AppendString(dst, event)
	dst = append(dst, `,"args":[`...)
	dst, err := arg.AppendEJSON(dst)
	if err != nil {
		return nil, err
	}
	return append(dst, `]}}`...), nil
}

// streamArgStart is the buffer of a frame of one chat message: a plain
// visitor's or agent's message is 350-450 bytes (the bench's), so one
// allocation; a longer one grows it.
const streamArgStart = 512

// dataFrame writes {"msg":…,"collection":…,"id":…,"fields":…} as
// Marshal of that Obj would (four keys are never an EJSON form), without
// building the Obj.
func dataFrame(head, collection, id string, fields any) ([]byte, error) {
	e := encoder{}
	e.buf.Grow(marshalStart)
	e.buf.WriteString(head)
	writeString(&e.buf, collection)
	e.buf.WriteString(`,"id":`)
	writeString(&e.buf, id)
	e.buf.WriteString(`,"fields":`)
	if err := e.value(fields, 1); err != nil {
		return nil, err
	}
	e.buf.WriteByte('}')
	return e.buf.Bytes(), nil
}

// ErrorFrame is a connection-level error (Meteor's sendError); offending,
// when not nil, is echoed as offendingMessage.
func ErrorFrame(reason string, offending any) []byte {
	o := Obj{{"msg", "error"}, {"reason", reason}}
	if offending != nil {
		o = append(o, KV{"offendingMessage", offending})
	}
	b, err := Marshal(o)
	if err != nil {
		return mustMarshal(Obj{{"msg", "error"}, {"reason", reason}})
	}
	return b
}
