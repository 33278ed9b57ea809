package jsondec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// anySeeds are request bodies of the kinds the Rocket.Chat REST surface
// decodes into map[string]any (livechat/message and the rest), and the
// hostile inputs where goccy/go-json and encoding/json may part: invalid
// UTF-8, lone and paired surrogate escapes, duplicate keys, numbers at and
// past float64's range, deep nesting, trailing data.
var anySeeds = []string{
	`{"token":"tok-1","rid":"01M9624YA4HKW3SJYVKMV2CDFV","msg":"hello","_id":"abc"}`,
	`{"token":"t","rid":"r","msg":"caf\u00e9 \ud83d\ude00 <b>&amp;</b>\n\t\"\\\/"}`,
	`{"msg":"\ud800"}`, `{"msg":"\udc00\ud800x"}`, `{"msg":"\ud83d\u0041"}`, `{"msg":"\uDBFF\uDFFF"}`,
	"{\"msg\":\"a\xffb\"}", "{\"m\xc3\x28sg\":1}", `{"a":1,"a":2}`, `{"a":{"b":1},"a":{"c":2}}`, `{"a":[1],"a":null}`,
	`{"n":1e308,"m":-0,"o":0.1,"p":123456789012345678901234567890,"q":5e-324,"r":1E+2}`,
	`{"n":1e309}`, `{"n":-1e400}`, `{"n":2.5e-400}`,
	`{"a":[{"b":[[[{"c":true,"d":false,"e":null}]]]}]}`,
	`{"a":1} x`, `{"a":1}{}`, `{"a":}`, `{"a":1,}`, `[1,2]`, `"s"`, `null`, `true`, `12`, ``, ` `, `{}`, `{ "a" : [ ] }`,
	`{"":""}`, `{"\u0000":"\u0000"}`, `{"a":"\u00"}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":01}`, `{"a":.5}`, `{"a":+1}`, `{"a":1.}`,
	`{"a":tru}`, `{"a":nulll}`, `{"a":"b"` + "\u2028" + `}`,
	// encoding/json's depth limit is 10,000 (the object is one level).
	`{"a":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}`,
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

// FuzzUnmarshalAny: on any input, Unmarshal into map[string]any (the
// Rocket.Chat REST bodies) and into any gives encoding/json's value and
// encoding/json's error, so a client's body means the same whichever
// decoder ran.
func FuzzUnmarshalAny(f *testing.F) {
	for _, s := range anySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want map[string]any
		err := Unmarshal(b, &got)
		werr := json.Unmarshal(b, &want)
		sameResult(t, b, got, want, err, werr)
		var gotAny, wantAny any
		err = Unmarshal(b, &gotAny)
		werr = json.Unmarshal(b, &wantAny)
		sameResult(t, b, gotAny, wantAny, err, werr)
	})
}

// TestUnmarshalAnySeeds runs the fuzz seeds in every `go test` (the fuzz
// engine runs them too, but only under -fuzz or as part of the seed
// corpus; this names each).
func TestUnmarshalAnySeeds(t *testing.T) {
	for _, s := range anySeeds {
		t.Run("", func(t *testing.T) {
			var got, want map[string]any
			err := Unmarshal([]byte(s), &got)
			werr := json.Unmarshal([]byte(s), &want)
			sameResult(t, []byte(s), got, want, err, werr)
		})
	}
}

func sameResult(t *testing.T, in []byte, got, want any, err, werr error) {
	t.Helper()
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("%q: error %v, encoding/json %v", in, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: got %#v, encoding/json %#v", in, got, want)
	}
}
