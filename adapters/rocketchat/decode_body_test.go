package rocketchat

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeObjectAsStd: a JSON body decodes to encoding/json's map, and
// what encoding/json refuses or does not make an object of (null, an
// array, a string, invalid JSON, trailing data) is refused; hostile
// strings (invalid UTF-8, lone surrogates) and duplicate keys come out as
// encoding/json makes them.
func TestDecodeObjectAsStd(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"widget send", `{"token":"tok","rid":"r1","msg":"hello","_id":"m1"}`, true},
		{"nested and numbers", `{"a":{"b":[1,2.5,-0,1e308]},"c":null,"d":true}`, true},
		{"escapes", `{"msg":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/"}`, true},
		{"lone surrogate", `{"msg":"\ud800x"}`, true},
		{"invalid UTF-8", "{\"msg\":\"a\xffb\"}", true},
		{"duplicate key", `{"msg":"first","msg":"second"}`, true},
		{"empty object", `{}`, true},
		{"null", `null`, false},
		{"array", `[{"msg":"x"}]`, false},
		{"string", `"x"`, false},
		{"number past float64", `{"n":1e400}`, false},
		{"trailing data", `{"msg":"x"} {}`, false},
		{"truncated", `{"msg":"x"`, false},
		{"not JSON that goccy alone accepts", `{"0":{""0{0}}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeObject([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("decodeObject(%q) = %v, %v; want ok %v", tc.body, got, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeObject(%q) = %#v, encoding/json %#v", tc.body, got, want)
			}
		})
	}
}

// BenchmarkDecodeBody: the body of a visitor's message (POST
// livechat/message, as the widget and the bench send it), decoded by
// encoding/json (before round 6b) and by decodeObject.
func BenchmarkDecodeBody(b *testing.B) {
	body := []byte(`{"token":"bench-visitor-0001-3f9a1c2d7e","rid":"01M9624YA4HKW3SJYVKMV2CDFV","msg":"bench|1|1234|1733490000000000000"}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeObject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeObject(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
