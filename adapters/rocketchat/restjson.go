package rocketchat

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"chatgate/adapters/internal/jsonstr"
)

// appendREST appends v as restJSON sends it: the bytes of
// json.Marshal(isoDates(v)) (TestRESTEncodingAsEncodingJSON,
// FuzzRESTEncoding), written in one pass over the maps and slices REST
// handlers build instead of a dated copy of them and a reflective encode
// (the answer of every sent message was two thirds of restJSON's cost).
// What the handlers build from maps, slices, strings, numbers, booleans
// and times is written here; any other value goes to encoding/json as
// before. As isoDates did, a nil map or slice of the kinds it copies is
// written empty ({} or []), times as Date.toJSON strings.
func appendREST(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxRESTDepth {
		return appendMarshal(dst, isoDates(v)) // the way it always went
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendMarshal(dst, x) // encoding/json's error
		}
		return appendJSONFloat(dst, x), nil
	case time.Time:
		return appendJSONString(dst, isoTime(x)), nil
	case *time.Time:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendJSONString(dst, isoTime(*x)), nil
	case map[string]any:
		return appendRESTMap(dst, x, depth)
	case *message:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return x.appendTo(dst, false)
	case gin.H:
		return appendRESTMap(dst, x, depth)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendREST(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case []map[string]any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendRESTMap(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendMarshal(dst, v)
}

// maxRESTDepth is where appendREST hands a value to encoding/json whole.
const maxRESTDepth = 64

// appendRESTMap writes a map with its keys sorted, as encoding/json does;
// nil is {} (isoDates made an empty copy of it).
func appendRESTMap(dst []byte, m map[string]any, depth int) ([]byte, error) {
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendREST(dst, m[k], depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendJSONFloat writes a finite float as encoding/json does.
func appendJSONFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString writes s as encoding/json does by default (<, > and &
// escaped).
func appendJSONString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, true) }

// restBody is the encoded body of a REST answer.
func restBody(v any) ([]byte, error) {
	return appendREST(make([]byte, 0, 1024), v, 0)
}
