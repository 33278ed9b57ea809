package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"chatgate/internal/jsondec"
)

// Unmarshal decodes a client's JSON b into v (a pointer) exactly as
// encoding/json.Unmarshal does (same result, same errors), in about half
// the time.
//
// Request decoding was the largest part of the LiveChat surfaces' own CPU
// per message (docs/performance.md, round 4): encoding/json validates a
// frame in one pass and decodes it in another with reflection, and the
// payload, kept raw by the envelope, was validated and decoded again.
// Here encoding/json's scanner still decides what is valid JSON (goccy
// skips unknown fields leniently, e.g. it takes 01 for a number), and
// goccy/go-json (already in the module graph through gin, and the store's
// event decoder) decodes what it has accepted. See unmarshalValid for
// where goccy is not trusted.
func Unmarshal(b []byte, v any) error {
	if !json.Valid(b) {
		return json.Unmarshal(b, v) // encoding/json's own SyntaxError
	}
	return unmarshalValid(b, v)
}

// unmarshalValid is Unmarshal for b already known to be valid JSON (a
// payload cut from a validated frame). goccy is only trusted where it
// agrees with encoding/json (FuzzUnmarshalMatchesStd):
//
//   - input that is not valid UTF-8 goes to encoding/json, which replaces
//     invalid bytes with U+FFFD where goccy keeps them;
//   - when goccy refuses the input, encoding/json decodes it again from v
//     as it was, so that clients get encoding/json's error (and its
//     *json.UnmarshalTypeError, which jsonProblem reads) and a value goccy
//     alone would refuse is still accepted;
//   - input with a high surrogate escape goes to encoding/json (see
//     jsondec.HighSurrogateEscape);
//   - a panic inside goccy on hostile input is taken as a refusal too.
func unmarshalValid(b []byte, v any) error {
	if !utf8.Valid(b) || jsondec.HighSurrogateEscape(b) {
		return json.Unmarshal(b, v)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return json.Unmarshal(b, v) // encoding/json's InvalidUnmarshalError
	}
	// The caller may have set defaults in *v that a partial decode by
	// goccy would overwrite before failing: keep them for the fallback.
	// Nearly every target is a fresh zero value (send_event's request, a
	// frame's envelope), which needs no copy (an allocation per request):
	// it is zeroed again instead.
	elem := rv.Elem()
	if elem.IsZero() {
		if fastUnmarshal(b, v) == nil {
			return nil
		}
		elem.SetZero()
		return json.Unmarshal(b, v)
	}
	saved := reflect.New(elem.Type()).Elem()
	saved.Set(elem)
	if fastUnmarshal(b, v) == nil {
		return nil
	}
	elem.Set(saved)
	return json.Unmarshal(b, v)
}

// errGoccyUnsafe is fastUnmarshal's refusal of input goccy must not see.
var errGoccyUnsafe = errors.New("goccy/go-json: input with a high surrogate escape")

// fastUnmarshal decodes b with goccy, or refuses: the callers then decode
// with encoding/json. b must be valid JSON.
func fastUnmarshal(b []byte, v any) (err error) {
	if jsondec.HighSurrogateEscape(b) {
		return errGoccyUnsafe
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("goccy/go-json: %v", r)
		}
	}()
	return gojson.Unmarshal(b, v)
}
