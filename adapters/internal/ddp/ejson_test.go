package ddp

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2022, 5, 10, 14, 3, 20, 456_000_000, time.UTC) // 1652191400456 ms

// TestMarshal checks the EJSON text of Go values.
func TestMarshal(t *testing.T) {
	type inner struct {
		At time.Time `json:"at"`
	}
	type embedded struct {
		E string `json:"e"`
	}
	type msg struct {
		embedded
		ID      string          `json:"_id"`
		TS      time.Time       `json:"ts"`
		Edited  time.Time       `json:"editedAt,omitzero"`
		Skip    string          `json:"-"`
		Empty   string          `json:"empty,omitempty"`
		Ptr     *inner          `json:"ptr,omitempty"`
		Bin     []byte          `json:"bin"`
		Raw     json.RawMessage `json:"raw"`
		private int
		Plain   int
	}
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `null`},
		{"string without HTML escaping", "a<b>&\"\\\n\u2028", `"a<b>&\"\\\n\u2028"`},
		{"invalid utf8", "a\xffb", `"a\ufffdb"`},
		{"date", t0, `{"$date":1652191400456}`},
		{"date before epoch", time.UnixMilli(-1).UTC(), `{"$date":-1}`},
		{"date pointer", &t0, `{"$date":1652191400456}`},
		{"nil date pointer", (*time.Time)(nil), `null`},
		{"sub-millisecond truncated", t0.Add(999 * time.Microsecond), `{"$date":1652191400456}`},
		{"binary", []byte{0, 1, 2, 250}, `{"$binary":"AAEC+g=="}`},
		{"raw", json.RawMessage(`{ "a" : [1, 2] }`), `{"a":[1,2]}`},
		{"NaN", math.NaN(), `{"$InfNaN":0}`},
		{"+Inf", math.Inf(1), `{"$InfNaN":1}`},
		{"-Inf", math.Inf(-1), `{"$InfNaN":-1}`},
		{"float like encoding/json", []any{1.5, 1e21, 1e-7, 100.0, float32(0.1)}, `[1.5,1e+21,1e-7,100,0.1]`},
		{"ints", []any{int8(-3), uint16(7), int64(1 << 40)}, `[-3,7,1099511627776]`},
		{"regexp", RegExp{Source: "^a.*", Flags: "i"}, `{"$regexp":"^a.*","$flags":"i"}`},
		{"map sorted, dates inside", map[string]any{"z": 1, "a": t0, "m": []any{t0}},
			`{"a":{"$date":1652191400456},"m":[{"$date":1652191400456}],"z":1}`},
		{"ordered object", Obj{{"msg", "result"}, {"id", "1"}}, `{"msg":"result","id":"1"}`},
		{"escape $date look-alike", map[string]any{"$date": 5}, `{"$escape":{"$date":5}}`},
		{"escape $binary look-alike", map[string]any{"$binary": "x"}, `{"$escape":{"$binary":"x"}}`},
		{"escape $escape look-alike", map[string]any{"$escape": map[string]any{"a": 1}}, `{"$escape":{"$escape":{"a":1}}}`},
		{"escape $type/$value", map[string]any{"$type": "x", "$value": 1}, `{"$escape":{"$type":"x","$value":1}}`},
		{"escape keeps values EJSON", map[string]any{"$date": t0}, `{"$escape":{"$date":{"$date":1652191400456}}}`},
		{"no escape for 3 keys", map[string]any{"$date": 1, "a": 2, "b": 3}, `{"$date":1,"a":2,"b":3}`},
		{"no escape for other $ keys", map[string]any{"$set": 1}, `{"$set":1}`},
		{"typed map", map[string]time.Time{"ts": t0}, `{"ts":{"$date":1652191400456}}`},
		{"int-keyed map", map[int]string{2: "b", 1: "a"}, `{"1":"a","2":"b"}`},
		{"typed slice", []map[string]any{{"ts": t0}}, `[{"ts":{"$date":1652191400456}}]`},
		{"nil slice and map", []any{[]string(nil), map[string]any(nil)}, `[null,null]`},
		{"struct with tags", msg{embedded: embedded{E: "e"}, ID: "x", TS: t0, Skip: "no", Bin: []byte("hi"),
			Raw: json.RawMessage(`true`), Plain: 3},
			`{"e":"e","_id":"x","ts":{"$date":1652191400456},"bin":{"$binary":"aGk="},"raw":true,"Plain":3}`},
		{"struct pointer with nested struct", &msg{ID: "y", TS: t0, Edited: t0, Ptr: &inner{At: t0}},
			`{"e":"","_id":"y","ts":{"$date":1652191400456},"editedAt":{"$date":1652191400456},"ptr":{"at":{"$date":1652191400456}},"bin":null,"raw":null,"Plain":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("Marshal =\n %s\nwant\n %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not valid JSON: %s", got)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	cyc := map[string]any{}
	cyc["self"] = cyc
	for name, v := range map[string]any{
		"channel":        make(chan int),
		"func":           func() {},
		"complex":        complex(1, 2),
		"cycle":          cyc,
		"bad raw":        json.RawMessage(`{`),
		"far future":     time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
		"struct map key": map[struct{ A int }]int{{1}: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Marshal(v); !errors.Is(err, ErrMarshal) {
				t.Fatalf("Marshal(%s) error = %v, want ErrMarshal", name, err)
			}
		})
	}
}

// TestUnmarshal checks decoding of EJSON text, including the forms refused.
func TestUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
		err  error
	}{
		{"date", `{"$date":1652191400456}`, t0, nil},
		{"date with fraction truncates like JS", `{"$date":1652191400456.9}`, t0, nil},
		{"date as ISO string", `{"$date":"2022-05-10T14:03:20.456Z"}`, t0, nil},
		{"date nested", `{"a":[{"ts":{"$date":0}}]}`, map[string]any{"a": []any{map[string]any{"ts": time.UnixMilli(0).UTC()}}}, nil},
		{"binary", `{"$binary":"AAEC+g=="}`, []byte{0, 1, 2, 250}, nil},
		{"binary unpadded", `{"$binary":"aGk"}`, []byte("hi"), nil},
		{"InfNaN +", `{"$InfNaN":1}`, math.Inf(1), nil},
		{"InfNaN -", `{"$InfNaN":-1}`, math.Inf(-1), nil},
		{"escape keeps inner keys literal", `{"$escape":{"$date":5}}`, map[string]any{"$date": 5.0}, nil},
		{"escape decodes inner values", `{"$escape":{"$date":{"$date":0}}}`, map[string]any{"$date": time.UnixMilli(0).UTC()}, nil},
		{"escape only one level", `{"$escape":{"a":{"$escape":{"$binary":"x"}}}}`, map[string]any{"a": map[string]any{"$binary": "x"}}, nil},
		{"regexp", `{"$regexp":"a+","$flags":"g"}`, RegExp{Source: "a+", Flags: "g"}, nil},
		{"$date with another key is plain", `{"$date":1,"x":2}`, map[string]any{"$date": 1.0, "x": 2.0}, nil},
		{"unknown $ key is plain", `{"$foo":1}`, map[string]any{"$foo": 1.0}, nil},
		{"plain values", `[1,"a",true,null]`, []any{1.0, "a", true, nil}, nil},

		{"date not a number", `{"$date":true}`, nil, ErrEJSON},
		{"date bad string", `{"$date":"soon"}`, nil, ErrEJSON},
		{"date out of JS range", `{"$date":9e15}`, nil, ErrEJSON},
		{"binary not base64", `{"$binary":"!!"}`, nil, ErrEJSON},
		{"binary not a string", `{"$binary":1}`, nil, ErrEJSON},
		{"InfNaN not a number", `{"$InfNaN":"x"}`, nil, ErrEJSON},
		{"escape of a string", `{"$escape":"x"}`, nil, ErrEJSON},
		{"regexp not strings", `{"$regexp":1,"$flags":"g"}`, nil, ErrEJSON},
		{"custom type refused", `{"$type":"oid","$value":"x"}`, nil, ErrUnsupported},
		{"custom type deep inside refused", `{"a":[{"$type":"oid","$value":"x"}]}`, nil, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unmarshal([]byte(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Unmarshal(%s) error = %v, want %v", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Unmarshal(%s) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
	got, err := Unmarshal([]byte(`{"$InfNaN":0}`))
	if f, ok := got.(float64); err != nil || !ok || !math.IsNaN(f) {
		t.Fatalf(`Unmarshal({"$InfNaN":0}) = %v, %v; want NaN`, got, err)
	}
}

// TestRoundTrip encodes Go values and decodes them back: dates, binaries,
// escaped look-alikes and plain values survive unchanged.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"message with dates", map[string]any{"_id": "m1", "ts": t0, "_updatedAt": t0.Add(time.Second),
			"u": map[string]any{"_id": "a", "username": "agent.smith"}, "mentions": []any{}}},
		{"binary", map[string]any{"file": []byte("\x00\xffdata")}},
		{"date look-alike", map[string]any{"$date": 1.0}},
		{"binary look-alike with a real date inside", map[string]any{"$binary": t0}},
		{"escape look-alike", map[string]any{"$escape": "x"}},
		{"custom look-alike", map[string]any{"$type": "t", "$value": []any{1.0}}},
		{"regexp", []any{RegExp{Source: `\d+`, Flags: "gi"}}},
		{"infinities", []any{math.Inf(1), math.Inf(-1), 0.5}},
		{"nested arrays", []any{[]any{[]any{t0}}, "s", true, nil}},
		{"unicode", map[string]any{"k\u00e9": "\u2028\U0001F600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Fatalf("round trip through %s:\n got %#v\nwant %#v", b, got, tt.in)
			}
		})
	}
}

func TestToJSONValue(t *testing.T) {
	v, err := ToJSONValue(map[string]any{"ts": t0, "$date": 1})
	if err != nil {
		t.Fatal(err)
	}
	// Two keys, one of them not special: not escaped.
	want := map[string]any{"$date": 1.0, "ts": map[string]any{"$date": 1652191400456.0}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("ToJSONValue = %#v, want %#v", v, want)
	}
	if _, err := ToJSONValue(make(chan int)); err == nil {
		t.Fatal("ToJSONValue(chan) succeeded")
	}
}

func TestDeeplyNestedInputIsRefusedNotCrashed(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := Unmarshal([]byte(deep)); err == nil {
		t.Fatal("20000-deep array accepted")
	}
	if _, err := DecodeFrame([]byte(`{"msg":"method","params":` + deep + `}`)); err == nil {
		t.Fatal("20000-deep params accepted")
	}
}
