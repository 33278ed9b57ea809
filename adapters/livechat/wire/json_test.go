package wire

import (
	"encoding/json"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// unmarshalTargets are the shapes request payloads decode into: the
// envelope, send_event's (an EventIn with raw, map and slice fields),
// and one of numbers, booleans, lists and free-form values.
func unmarshalTargets() []func() any {
	type envelope struct {
		RequestID json.RawMessage `json:"request_id"`
		Action    json.RawMessage `json:"action"`
		Payload   json.RawMessage `json:"payload"`
		Version   json.RawMessage `json:"version"`
	}
	type sendEvent struct {
		ChatID             string   `json:"chat_id"`
		Event              *EventIn `json:"event"`
		AttachToLastThread bool     `json:"attach_to_last_thread"`
	}
	type misc struct {
		Limit    int               `json:"limit"`
		Size     int64             `json:"size"`
		Small    uint8             `json:"small"`
		Ratio    float64           `json:"ratio"`
		On       *bool             `json:"on"`
		IDs      []string          `json:"ids"`
		Groups   []int             `json:"groups"`
		Fields   map[string]string `json:"fields"`
		Any      any               `json:"any"`
		Sessions []map[string]any  `json:"session_fields"`
		Name     string            `json:"name"`
	}
	return []func() any{
		func() any { return new(envelope) },
		func() any { return new(sendEvent) },
		func() any { return &misc{Limit: 25, Name: "default"} },
		func() any { return new(map[string]json.RawMessage) },
	}
}

// FuzzUnmarshalMatchesStd: whatever Unmarshal accepts, encoding/json
// accepts too, decoding it to the same value; whatever it refuses,
// encoding/json refuses with the same error. So clients cannot tell which
// decoder read their request.
func FuzzUnmarshalMatchesStd(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"1","action":"send_event","payload":{"chat_id":"x","event":{"type":"message","text":"hi"}}}`,
		`{"request_id":"1","action":"ping","payload":null,"version":"3.5"}`,
		`{"chat_id":"x","event":{"type":"custom","content":{"a":[1,2.5e3,"\u00e9"]},"properties":{"ns":{"k":true}}}}`,
		`{"limit":10,"size":-3,"small":255,"ratio":1e-3,"on":true,"ids":["a","b"],"groups":[0,1],"fields":{"a":"b"},"any":{"x":[null]},"session_fields":[{"a":1}]}`,
		`{"limit":1.5}`, `{"small":256}`, `{"ids":"a"}`, `{"Limit":3,"LIMIT":4}`, `{"name":"a\ud800b"}`,
		`{"a":1} x`, `{"a":01}`, `{"a":1,}`, `{"name":"\/\b\f\n\r\t"}`, " {\"payload\" : {} } ", `{"on":null}`,
		// goccy's checkptr fault under -race (TestUnmarshalHighSurrogateNearEnd)
		`{"any":"\udc00\ud800x"}`, `{"name":"\uD83D\uDE00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range unmarshalTargets() {
			got, want := target(), target()
			err := Unmarshal(data, got)
			werr := json.Unmarshal(data, want)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("%T from %q: error %v, encoding/json %v", got, data, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T from %q:\n got %#v\nwant %#v", got, data, got, want)
			}
		}
	})
}

// TestUnmarshalKeepsDefaultsOnRefusal: a payload goccy refuses half way is
// decoded again by encoding/json from the caller's defaults, not from
// goccy's partial result.
func TestUnmarshalKeepsDefaultsOnRefusal(t *testing.T) {
	type p struct {
		Limit int    `json:"limit"`
		Name  string `json:"name"`
	}
	for _, tc := range []struct {
		in   string
		want p
		err  bool
	}{
		{`{"limit":3,"name":"x"}`, p{3, "x"}, false},
		{`{"name":"x"}`, p{25, "x"}, false},
		{`{"name":"x","limit":"3"}`, p{25, "x"}, true},
		{`{"name":"x","limit":`, p{25, "d"}, true},
	} {
		got := p{Limit: 25, Name: "d"}
		err := Unmarshal([]byte(tc.in), &got)
		want := p{Limit: 25, Name: "d"}
		werr := json.Unmarshal([]byte(tc.in), &want)
		if (err != nil) != tc.err || (werr != nil) != tc.err {
			t.Fatalf("%s: err %v, encoding/json %v", tc.in, err, werr)
		}
		if got != want {
			t.Fatalf("%s: got %+v, encoding/json %+v", tc.in, got, want)
		}
	}
}

// FuzzDecodeRequestPaths: DecodeRequest's goccy path reads any frame as
// its encoding/json path does (same request, same error).
func FuzzDecodeRequestPaths(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"1","action":"send_event","payload":{"chat_id":"x"}}`,
		`{"request_id":1,"action":"ping"}`, `{"action":"ping","payload":[]}`, `{"action":""}`,
		`{"request_id":"a\u00e9\n","action":"x","version":"3.5","author_id":null,"payload":null}`,
		`{"Action":"x","ACTION":"y","request_id":"1","request_id":2}`, `{"action":"x"} `, `{"action":"\xff"}`,
		`{"action":"x","request_id":"\udc00\ud800x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeRequest(data, true)
		want, werr := decodeRequest(data, false)
		if !reflect.DeepEqual(gerr, werr) {
			t.Fatalf("%q: error %v, encoding/json path %v", data, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
		}
	})
}

// highSurrogateInputs are valid JSON strings holding a high surrogate
// escape (\ud800–\udbff) a few bytes before the end of the input, padded
// so that goccy's copy of the input (len+1 bytes) ends exactly on one of
// the allocator's size classes for some of them: goccy's unescapeString
// computes src+11 to look for the low half, a pointer past that
// allocation, which -race's checkptr turns into a fatal error (goccy/go-json
// issues 575, 577; docs/performance.md, round 6b "rcmore").
func highSurrogateInputs() []string {
	var out []string
	for pad := 0; pad < 80; pad++ {
		key := strings.Repeat("k", pad+1)
		for _, tail := range []string{`\udc00\ud800x`, `\ud800`, `\uDBFF`, `\ud83d\ude00`, `a\udbffb`} {
			out = append(out, `{"`+key+`":"`+tail+`"}`)
			out = append(out, `{"request_id":"1","action":"`+tail+`"}`+strings.Repeat(" ", pad%3))
		}
	}
	return out
}

// TestUnmarshalHighSurrogateNearEnd: such inputs decode as encoding/json
// decodes them (the lone halves as U+FFFD, a pair as its rune), and under
// -race without checkptr killing the process (it did before Unmarshal
// kept them away from goccy).
func TestUnmarshalHighSurrogateNearEnd(t *testing.T) {
	for _, in := range highSurrogateInputs() {
		for _, target := range []func() any{
			func() any { return new(map[string]any) },
			func() any { return new(map[string]string) },
			func() any { return new(any) },
		} {
			got, want := target(), target()
			err := Unmarshal([]byte(in), got)
			if werr := json.Unmarshal([]byte(in), want); err != nil || werr != nil {
				t.Fatalf("%s: error %v, encoding/json %v", in, err, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: got %#v, encoding/json %#v", in, got, want)
			}
		}
		got, gerr := decodeRequest([]byte(in), true)
		want, werr := decodeRequest([]byte(in), false)
		if !reflect.DeepEqual(gerr, werr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: DecodeRequest %#v %v, encoding/json path %#v %v", in, got, gerr, want, werr)
		}
	}
}

// TestDecodePayloadOwnsStrings: a short string DecodePayload decodes from
// a large payload, kept, does not keep the payload (goccy's strings alias
// its copy of the whole payload; encoding/json's own their bytes).
func TestDecodePayloadOwnsStrings(t *testing.T) {
	const n, size = 40, 60 << 10
	pad := strings.Repeat("x", size)
	kept := make([]string, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range kept {
		req, werr := DecodeRequest([]byte(`{"action":"a","payload":{"pad":"` + pad + `","name":"n` + strconv.Itoa(i) + `"}}`))
		if werr != nil {
			t.Fatal(werr)
		}
		var p struct {
			Pad  string `json:"pad"`
			Name string `json:"name"`
		}
		if err := DecodePayload(req, &p); err != nil {
			t.Fatal(err)
		}
		kept[i] = p.Name
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > n*size/4 {
		t.Fatalf("heap grew by %d bytes for %d kept names of 3 bytes: decoded strings pin their payloads", grown, n)
	}
	runtime.KeepAlive(kept)
}

// TestUnmarshalZeroTargetAllocations: decoding into a fresh zero value
// (send_event's request, a frame's envelope) keeps no copy of it for the
// fallback: two allocations are left for a payload of plain strings,
// goccy's own (its copy of the input among them); three with the copy of
// the target.
func TestUnmarshalZeroTargetAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	b := []byte(`{"chat_id":"01JEXAMPLEVISITOR000000000","thread_id":"t"}`)
	n := testing.AllocsPerRun(100, func() {
		var p struct {
			ChatID   string `json:"chat_id"`
			ThreadID string `json:"thread_id"`
		}
		if err := unmarshalValid(b, &p); err != nil || p.ThreadID != "t" {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Fatalf("%v allocations per decode, want 2", n)
	}
}
