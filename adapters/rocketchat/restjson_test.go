package rocketchat

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// restOracle is what restJSON wrote before appendREST: encoding/json of
// the dated copy.
func restOracle(v any) ([]byte, error) { return json.Marshal(isoDates(v)) }

// TestRESTEncodingAsEncodingJSON: restBody writes the bytes encoding/json
// wrote of isoDates' copy, for what handlers build and for what they
// might: escapes, nil maps and slices, times, other types, deep values.
func TestRESTEncodingAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 6, 14, 3, 4, 567_891_000, time.FixedZone("x", 3600))
	var nilTime *time.Time
	deep := any("bottom")
	for range maxRESTDepth + 10 {
		deep = map[string]any{"d": deep, "t": at, "n": map[string]any(nil)}
	}
	type tagged struct {
		A string    `json:"a"`
		B time.Time `json:"b,omitzero"`
	}
	wide := map[string]any{}
	for i := range 40 {
		wide[fmt.Sprintf("k%02d", (i*17)%40)] = i
	}
	values := []any{
		nil,
		"plain",
		"<b>&amp;</b> \"q\" \\ \b\f\n\r\t\x01\x1f \u2028\u2029 é 😀 \xff\xfe",
		true, false, 0, -7, int64(1) << 62, 0.0, 1.5, -2.25e-7, 1e21, 123456789.125, 1e-6,
		at, &at, nilTime,
		map[string]any(nil), gin.H(nil), []any(nil), []map[string]any(nil), []string(nil),
		map[string]any{"message": map[string]any{"_id": "m1", "ts": at, "u": gin.H{"_id": "v", "name": "Vé <x>"},
			"mentions": []any{}, "channels": []any{}, "attachments": []map[string]any{{"ts": at}, nil}}, "success": true},
		[]any{at, []any{nilTime, map[string]any{}}, json.RawMessage(` {"a": 1} `), tagged{A: "x", B: at}, []string{"a", "<"}},
		map[string]any{"m": map[string]map[string]any{"in": {"t": at}}, "s": []time.Time{at}},
		wide,
		deep,
	}
	for i, v := range values {
		want, werr := restOracle(v)
		got, gerr := restBody(v)
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Errorf("%d: got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := restBody(map[string]any{"f": f}); err == nil {
			t.Errorf("%v encoded without error", f)
		}
	}
}

// FuzzRESTEncoding: for values built from arbitrary bytes (strings of any
// bytes, numbers, nesting), restBody writes what encoding/json wrote.
func FuzzRESTEncoding(f *testing.F) {
	f.Add([]byte("hello <world> & \u2028"), 3.5, int64(7))
	f.Add([]byte{0xff, 0x00, '"', '\\', 0x7f}, -1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, b []byte, fl float64, n int64) {
		s := string(b)
		at := time.UnixMilli(n % 8.64e15).UTC()
		keys := strings.Split(s, "\x00")
		m := map[string]any{}
		for i, k := range keys {
			switch i % 4 {
			case 0:
				m[k] = k
			case 1:
				m[k] = []any{fl, n, at}
			case 2:
				m[k] = map[string]any{k: s, "": nil}
			case 3:
				m[k] = gin.H{"b": utf8.ValidString(k), "x": []map[string]any{{k: k}}}
			}
		}
		v := map[string]any{"m": m, "s": s, "f": fl, "n": n}
		want, werr := restOracle(v)
		got, gerr := restBody(v)
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Fatalf("got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
		}
	})
}
