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
// (docs/performance.md, round 6b). Under -race, goccy's unescape trips
// checkptr (a fatal error) on a lone high surrogate escape near the end
// of the input: pointer arithmetic past the allocation that is only
// compared, never read (goccy/go-json v0.10.5 internal/decoder
// unescapeString).
package jsondec

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Unmarshal decodes b into v, which must point to a zero value (a failed
// fast decode is redone from scratch by encoding/json, whose result and
// error count).
func Unmarshal[T any](b []byte, v *T) error {
	if json.Valid(b) && utf8.Valid(b) && fast(b, v) == nil {
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
