package jsondec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"chatgate/core/model"
)

// TestUnmarshalMatchesStd: records of the store's kinds decode as with
// encoding/json, refusals included.
func TestUnmarshalMatchesStd(t *testing.T) {
	conv := model.Conversation{ID: "c1", Visitor: "v1", State: model.StateOpen, CreatedAt: time.Unix(1700000000, 9).UTC(),
		Tags: []string{"a"}, Props: map[string]map[string]json.RawMessage{"n": {"k": json.RawMessage(`[1,"\u00e9"]`)}}}
	good, err := json.Marshal(conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"record", string(good)},
		{"invalid UTF-8", `{"id":"c\xff1","visitor":"v"}`},
		{"not JSON (goccy alone accepts it)", `{"0":{""0{0}}}`},
		{"wrong type", `{"id":1}`},
		{"trailing data", string(good) + ` x`},
		{"null", `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, want model.Conversation
			err := Unmarshal([]byte(tc.in), &got)
			werr := json.Unmarshal([]byte(tc.in), &want)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("error %v, encoding/json %v", err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, encoding/json %+v", got, want)
			}
		})
	}
}

// BenchmarkConversation: a conversation record as the PostgreSQL store
// reads it back from its cache for every command (docs/performance.md,
// round 5), by encoding/json and by Unmarshal.
func BenchmarkConversation(b *testing.B) {
	at := time.Date(2026, 12, 6, 16, 14, 17, 412962000, time.UTC)
	rec, err := json.Marshal(model.Conversation{ID: "01M9624YA4HKW3SJYVKMV2CDFV", Visitor: "01M9624XTV452WJ8AS5A4GDVQN",
		State: model.StateOpen, Agent: "agent2@bench.local", Origin: "livechat.customer", CreatedAt: at, AssignedAt: at, LastSeq: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c model.Conversation
			if err := json.Unmarshal(rec, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsondec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c model.Conversation
			if err := Unmarshal(rec, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestHighSurrogateEscape: which inputs are kept from goccy.
func TestHighSurrogateEscape(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"a":"b"}`, false},
		{`{"a":"\ud800"}`, true},
		{`{"a":"\uDBFF"}`, true},
		{`{"a":"\udc00"}`, false}, // a low half: goccy decodes it safely
		{`{"a":"\u00e9\n\\"}`, false},
		{`{"a":"\\ud800"}`, true}, // conservative: an escaped backslash, then text
		{`{"a":"x\ud83d\ude00"}`, true},
		{`\u`, false},
		{`\ud8`, true}, // the start of one is enough
	} {
		if got := HighSurrogateEscape([]byte(tc.in)); got != tc.want {
			t.Errorf("HighSurrogateEscape(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestUnmarshalHighSurrogateNearEnd: records with a high surrogate escape
// near their end decode as encoding/json decodes them, and under -race
// without checkptr killing the process (goccy computes a pointer past its
// input there; it did before Unmarshal kept such input from goccy).
func TestUnmarshalHighSurrogateNearEnd(t *testing.T) {
	for pad := range 40 {
		for _, tail := range []string{`\udc00\ud800x`, `\ud800`, `\uDBFF`, `\ud83d\ude00`, `a\udbffb`} {
			in := []byte(`{"id":"` + strings.Repeat("k", pad+1) + `","text":"` + tail + `"}`)
			var got, want model.Event
			err := Unmarshal(in, &got)
			if werr := json.Unmarshal(in, &want); err != nil || werr != nil {
				t.Fatalf("%s: error %v, encoding/json %v", in, err, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: got %#v, encoding/json %#v", in, got, want)
			}
		}
	}
}
