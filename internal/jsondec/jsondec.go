// Package jsondec decodes JSON that chatgate wrote itself (records the
// PostgreSQL store reads back, pointers other nodes notify) as
// encoding/json would, in a fraction of its time: encoding/json's scanner
// decides what is valid, then goccy/go-json (already the bbolt store's
// and the RTM surfaces' decoder) decodes it. Where the two may differ,
// encoding/json decodes: input that is not valid UTF-8 (encoding/json
// replaces invalid bytes, goccy keeps them), and anything goccy refuses
// or panics on. goccy matches mis-cased member names less often than
// encoding/json; chatgate's encoders never write those.
//
// Not for clients' bodies whose strings are kept: goccy's strings point
// into its copy of the whole input, so one kept string keeps all of it
// (docs/performance.md, round 6b). Input that may hold a high surrogate
// escape is decoded by encoding/json (HighSurrogateEscape: under -race,
// goccy trips checkptr on one near the end of the input).
package jsondec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Unmarshal decodes b into v, which must point to a zero value (a failed
// fast decode is redone from scratch by encoding/json, whose result and
// error count).
func Unmarshal[T any](b []byte, v *T) error {
	if json.Valid(b) && utf8.Valid(b) && !HighSurrogateEscape(b) && fast(b, v) == nil {
		return nil
	}
	var zero T
	*v = zero
	return json.Unmarshal(b, v)
}

func fast(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("goccy/go-json: %v", r)
		}
	}()
	return gojson.Unmarshal(b, v)
}

// HighSurrogateEscape reports whether b may hold a \u escape of a high
// surrogate (\ud800–\udbff, either case), which goccy must not decode.
//
// goccy's unescapeString (v0.10.5), on such an escape, computes a pointer
// 11 bytes past it to look for the low half before checking that this is
// inside the input. Near the end of the input that pointer lies past
// goccy's copy of it: never read, so a normal build is not affected, but
// `go test -race` (checkptr) dies on it with a fatal error that no
// recover catches, on valid JSON (`{"msg":"\udc00\ud800x"}`; goccy/go-json
// issues 575, 577). It is the only place goccy computes such a pointer, and
// only for a high surrogate, so keeping these inputs away from goccy is
// enough. They are rare (browsers' JSON.stringify writes characters
// outside the BMP as UTF-8 and escapes only lone surrogates); encoding/json
// decodes them, at its own speed. The test is conservative (an escaped
// backslash followed by "ud800" counts too), and a frame without a
// backslash costs one IndexByte.
func HighSurrogateEscape(b []byte) bool {
	for i := bytes.IndexByte(b, '\\'); i >= 0; {
		if i+3 < len(b) && b[i+1] == 'u' && b[i+2]|0x20 == 'd' {
			switch b[i+3] | 0x20 {
			case '8', '9', 'a', 'b':
				return true
			}
		}
		j := bytes.IndexByte(b[i+1:], '\\')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}
