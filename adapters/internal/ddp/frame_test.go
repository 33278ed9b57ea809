package ddp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	m, err := DecodeFrame([]byte(`{"msg":"method","method":"sendMessageLivechat","id":"ddp-3",` +
		`"params":[{"_id":"x","ts":{"$date":1652191400456}}],"other":{"$date":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Msg() != "method" {
		t.Fatalf("Msg = %q", m.Msg())
	}
	if id, ok := m.ID(); !ok || id != "ddp-3" {
		t.Fatalf("ID = %q, %v", id, ok)
	}
	params, ok := m.Params()
	if !ok || len(params) != 1 {
		t.Fatalf("Params = %v, %v", params, ok)
	}
	if ts := params[0].(map[string]any)["ts"]; ts != t0 {
		t.Fatalf("params[0].ts = %#v, want %v (EJSON-decoded)", ts, t0)
	}
	// Keys other than params/fields/result stay plain JSON, as in Meteor.
	if other := m.Get("other"); !reflect.DeepEqual(other, map[string]any{"$date": 1.0}) {
		t.Fatalf("other = %#v, want plain JSON", other)
	}

	for _, in := range []string{``, `x`, `null`, `[]`, `"msg"`, `1`, `{"msg":"a"`} {
		if _, err := DecodeFrame([]byte(in)); !errors.Is(err, ErrNotObject) {
			t.Errorf("DecodeFrame(%q) error = %v, want ErrNotObject", in, err)
		}
	}
	if _, err := DecodeFrame([]byte(`{"msg":"method","params":[{"$date":"x"}]}`)); !errors.Is(err, ErrEJSON) {
		t.Errorf("bad $date in params: error = %v, want ErrEJSON", err)
	}
	if _, err := DecodeFrame([]byte(`{"msg":"sub","params":[{"$type":"x","$value":1}]}`)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("custom type in params: error = %v, want ErrUnsupported", err)
	}

	m, _ = DecodeFrame([]byte(`{"msg":"sub","id":7,"params":"nope"}`))
	if _, ok := m.ID(); ok {
		t.Error("numeric id reported as string")
	}
	if _, ok := m.Params(); ok {
		t.Error("non-array params accepted")
	}
	m, _ = DecodeFrame([]byte(`{"msg":"sub"}`))
	if p, ok := m.Params(); !ok || p != nil {
		t.Errorf("absent params = %v, %v; want nil, true", p, ok)
	}
}

func TestNegotiateVersion(t *testing.T) {
	tests := []struct {
		frame   string
		version string
		ok      bool
	}{
		{`{"msg":"connect","version":"1","support":["1","pre2","pre1"]}`, "1", true},
		{`{"msg":"connect","version":"pre2","support":["pre2"]}`, "pre2", true},
		{`{"msg":"connect","version":"pre1","support":["pre2","pre1"]}`, "pre2", false}, // client should use its best
		{`{"msg":"connect","version":"2","support":["2"]}`, "1", false},
		{`{"msg":"connect","version":"1","support":["pre1"]}`, "1", false}, // proposes what it does not support
		{`{"msg":"connect","version":"1"}`, "1", false},
		{`{"msg":"connect","version":1,"support":["1"]}`, "1", false},
		{`{"msg":"connect","version":"1","support":["1",2]}`, "1", false},
	}
	for _, tt := range tests {
		m, err := DecodeFrame([]byte(tt.frame))
		if err != nil {
			t.Fatal(err)
		}
		v, ok := NegotiateVersion(m)
		if v != tt.version || ok != tt.ok {
			t.Errorf("NegotiateVersion(%s) = %q, %v; want %q, %v", tt.frame, v, ok, tt.version, tt.ok)
		}
	}
}

func TestServerFrames(t *testing.T) {
	res, err := Result("ddp-1", map[string]any{"ts": t0})
	if err != nil {
		t.Fatal(err)
	}
	chg, err := Changed("stream-room-messages", "id", Obj{{"eventName", "R"}, {"args", []any{map[string]any{"ts": t0}}}})
	if err != nil {
		t.Fatal(err)
	}
	noRes, _ := Result("ddp-2", NoResult)
	nullRes, _ := Result("ddp-3", nil)
	tests := []struct {
		got  []byte
		want string
	}{
		{Connected("Kp8bWm3yZq7Lx2Hd4"), `{"msg":"connected","session":"Kp8bWm3yZq7Lx2Hd4"}`},
		{Failed("1"), `{"msg":"failed","version":"1"}`},
		{Ping(""), `{"msg":"ping"}`},
		{Pong("p1"), `{"msg":"pong","id":"p1"}`},
		{Pong(""), `{"msg":"pong"}`},
		{Ready("ddp-2"), `{"msg":"ready","subs":["ddp-2"]}`},
		{Updated("ddp-1"), `{"msg":"updated","methods":["ddp-1"]}`},
		{NoSub("ddp-3", nil), `{"msg":"nosub","id":"ddp-3"}`},
		{NoSub("ddp-3", NewError("not-allowed", "")),
			`{"msg":"nosub","id":"ddp-3","error":{"isClientSafe":true,"error":"not-allowed","message":"[not-allowed]","errorType":"Meteor.Error"}}`},
		{ResultError("ddp-9", MethodNotFound("foo")),
			`{"msg":"result","id":"ddp-9","error":{"isClientSafe":true,"error":404,"reason":"Method 'foo' not found","message":"Method 'foo' not found [404]","errorType":"Meteor.Error"}}`},
		{ResultError("ddp-9", &Error{Code: "error-invalid-room", Reason: "Invalid room", Details: map[string]any{"method": "x"}}),
			`{"msg":"result","id":"ddp-9","error":{"isClientSafe":true,"error":"error-invalid-room","reason":"Invalid room","details":{"method":"x"},"message":"Invalid room [error-invalid-room]","errorType":"Meteor.Error"}}`},
		{res, `{"msg":"result","id":"ddp-1","result":{"ts":{"$date":1652191400456}}}`},
		{noRes, `{"msg":"result","id":"ddp-2"}`},
		{nullRes, `{"msg":"result","id":"ddp-3","result":null}`},
		{chg, `{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"R","args":[{"ts":{"$date":1652191400456}}]}}`},
		{ErrorFrame("Bad request", nil), `{"msg":"error","reason":"Bad request"}`},
		{ErrorFrame("Must connect first", map[string]any{"msg": "sub", "at": t0}),
			`{"msg":"error","reason":"Must connect first","offendingMessage":{"at":{"$date":1652191400456},"msg":"sub"}}`},
		{ErrorFrame("x", make(chan int)), `{"msg":"error","reason":"x"}`},
		{ServerID(), `{"server_id":"0"}`},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("frame =\n %s\nwant\n %s", tt.got, tt.want)
		}
	}
	if _, err := Result("x", map[string]any{"c": make(chan int)}); !errors.Is(err, ErrMarshal) {
		t.Errorf("Result with an unencodable value: error = %v", err)
	}
}

func TestErrorMessage(t *testing.T) {
	if got := NewError("invalid-token", "").Error(); got != "[invalid-token]" {
		t.Errorf("Error() = %q", got)
	}
	if got := MatchFailed().Error(); got != "Match failed [400]" {
		t.Errorf("Error() = %q", got)
	}
	if got := InternalError().Error(); got != "Internal server error [500]" {
		t.Errorf("Error() = %q", got)
	}
	if got := SubscriptionNotFound("x").Error(); got != "Subscription 'x' not found [404]" {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder. It must never
// panic; what it accepts must survive the accessors and re-encode as valid
// JSON (the server echoes frames as offendingMessage), and decoding that
// encoding again must succeed.
func FuzzDecodeFrame(f *testing.F) {
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"msg":1}`,
		`{"msg":"connect","version":"1","support":["1","pre2","pre1"]}`,
		`{"msg":"ping","id":"p"}`, `{"msg":"pong"}`,
		`{"msg":"method","method":"livechat:setUpConnection","params":[{"token":"9f2c"}],"id":"ddp-1"}`,
		`{"msg":"sub","id":"ddp-2","name":"stream-room-messages","params":["R",{"useCollection":false,"args":[{"token":"T","visitorToken":"T"}]}]}`,
		`{"msg":"unsub","id":"ddp-2"}`,
		`{"msg":"method","method":"stream-notify-room","params":["R/typing","guest-1",true,{"token":"T"}],"id":"ddp-8"}`,
		`{"msg":"method","params":[{"$date":1652191400456},{"$binary":"AAE="},{"$InfNaN":-1},{"$escape":{"$date":1}}]}`,
		`{"msg":"method","params":[{"$regexp":"a","$flags":""},{"$type":"x","$value":1}]}`,
		`{"msg":"changed","fields":{"$date":"2022-05-10T14:03:20Z"},"result":{"$binary":"!"}}`,
		`{"msg":"method","params":[{"$date":1e300}]}`,
		`{"msg":"method","params":[{"$date":-8.64e15}]}`,
		`{"msg":"x","params":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`,
		"{\"msg\":\"\xff\xfe\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, ErrNotObject) && !errors.Is(err, ErrEJSON) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		_ = m.Msg()
		_, _ = m.ID()
		_, _ = m.Params()
		_, _ = m.Support()
		_, _ = NegotiateVersion(m)
		b := ErrorFrame("Bad request", m.Fields())
		if !json.Valid(b) {
			t.Fatalf("echo is not JSON: %s", b)
		}
		// Re-encoding what was decoded must decode again (EJSON is closed
		// under its own round trip), unless a value has no EJSON form.
		enc, err := Marshal(m.Fields())
		if err != nil {
			if !errors.Is(err, ErrMarshal) {
				t.Fatalf("Marshal: %v", err)
			}
			return
		}
		if _, err := DecodeFrame(enc); err != nil {
			t.Fatalf("re-encoded frame %s does not decode: %v", enc, err)
		}
	})
}

// TestDataFramesAsMarshal: Changed, Added and StreamChanged write their
// frames directly; the bytes are those of Marshal of the same Obj, for
// values that need escaping, EJSON forms and more keys than sort on the
// stack.
func TestDataFramesAsMarshal(t *testing.T) {
	wide := map[string]any{}
	for i := range stackMembers + 5 {
		wide[fmt.Sprintf("k%02d", (i*7)%(stackMembers+5))] = i
	}
	values := []any{
		nil,
		"plain",
		"quote \" backslash \\ <b>&amp;</b> \u2028 \x01 \xff",
		map[string]any{"ts": t0, "u": map[string]any{"_id": "v1", "username": "guest-1"}, "mentions": []any{}},
		map[string]any{"$date": "not a date"}, // escaped on the wire
		map[string]any{"$type": "x", "$value": 1},
		Obj{{"$binary", "x"}},
		[]any{[]byte("hi"), math.Inf(1), RegExp{Source: "a+", Flags: "i"}},
		wide,
	}
	for i, v := range values {
		want, err := Marshal(Obj{{"msg", "changed"}, {"collection", "stream-room-messages"}, {"id", "id"}, {"fields", v}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Changed("stream-room-messages", "id", v); err != nil || string(got) != string(want) {
			t.Errorf("%d: Changed = %s, %v; want %s", i, got, err, want)
		}
		want, _ = Marshal(Obj{{"msg", "added"}, {"collection", "c\"1"}, {"id", "x"}, {"fields", v}})
		if got, err := Added("c\"1", "x", v); err != nil || string(got) != string(want) {
			t.Errorf("%d: Added = %s, %v; want %s", i, got, err, want)
		}
		args := []any{v, "second"}
		want, _ = Marshal(Obj{{"msg", "changed"}, {"collection", "stream-notify-room"}, {"id", "id"},
			{"fields", Obj{{"eventName", "R1/typing"}, {"args", args}}}})
		if got, err := StreamChanged("stream-notify-room", "R1/typing", args); err != nil || string(got) != string(want) {
			t.Errorf("%d: StreamChanged = %s, %v; want %s", i, got, err, want)
		}
	}
	if _, err := StreamChanged("c", "e", []any{make(chan int)}); !errors.Is(err, ErrMarshal) {
		t.Errorf("StreamChanged of a channel: %v", err)
	}
}

// TestMarshalSortsKeys: maps are written in key order, on the stack up to
// stackMembers keys and beyond.
func TestMarshalSortsKeys(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, stackMembers, stackMembers + 1, 3 * stackMembers} {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprintf("k%03d", (i*37)%max(n, 1))] = i
		}
		got, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(m) // encoding/json sorts map keys too
		if string(got) != string(want) {
			t.Errorf("%d keys: %s, want %s", n, got, want)
		}
	}
}
