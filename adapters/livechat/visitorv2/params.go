package visitorv2

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// errTooLarge marks a body over the size limit (413).
var errTooLarge = errors.New("request body too large")

// kv is one decoded parameter.
type kv struct{ k, v string }

// values are decoded parameters in the order sent: a few pairs in a
// slice, cheaper to build and to search than url.Values' map of slices.
type values []kv

// Get returns the first value of k, or "".
func (vs values) Get(k string) string {
	v, _ := vs.lookup(k)
	return v
}

// lookup returns the first value of k and whether k was sent.
func (vs values) lookup(k string) (string, bool) {
	for i := range vs {
		if vs[i].k == k {
			return vs[i].v, true
		}
	}
	return "", false
}

// params reads a v2 request's parameters: the query string, then the body
// as application/x-www-form-urlencoded (documented) or application/json
// (what several third-party clients send), body values winning. JSON values
// must be scalars; numbers keep their text. As url.URL.Query did, a query
// pair that does not decode is left out; a body that does not decode is an
// error.
//
// The query's pairs are appended to buf.
func params(r *http.Request, maxBody int64, buf values) (query, body values, err error) {
	query, _ = parseForm(buf, r.URL.RawQuery)
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return query, nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, errTooLarge
		}
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(raw)) > maxBody {
		return nil, nil, errTooLarge
	}
	body, err = decodeBody(r.Header.Get("Content-Type"), raw)
	if err != nil {
		return nil, nil, err
	}
	return query, body, nil
}

// parseForm appends the pairs of an application/x-www-form-urlencoded
// string to vs, as url.ParseQuery decodes them (FuzzParseForm holds the
// two together): pairs split on '&', a ';' in a key is refused, a pair that
// does not unescape is left out and the first error returned. Unlike
// url.ParseQuery it copies nothing that needs no unescaping.
func parseForm(vs values, s string) (values, error) {
	if strings.Count(s, "&") >= maxFormPairs {
		return vs, errors.New("number of URL query parameters exceeded limit")
	}
	var first error
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if strings.Contains(pair, ";") {
			first = errSemicolon // url.ParseQuery lets this one replace an earlier error
			continue
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := unescape(k)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		v, err = unescape(v)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		vs = append(vs, kv{k, v})
	}
	return vs, first
}

// maxFormPairs is url.ParseQuery's default limit on pairs.
const maxFormPairs = 10000

var errSemicolon = errors.New("invalid semicolon separator in query")

// unescape is url.QueryUnescape, skipped when there is nothing to unescape.
func unescape(s string) (string, error) {
	if strings.ContainsAny(s, "%+") {
		return url.QueryUnescape(s)
	}
	return s, nil
}

// decodeBody parses a body by content type. An empty or unknown content
// type is read as a form when it parses as one, since curl -d sends forms.
func decodeBody(contentType string, body []byte) (values, error) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return values{}, nil
	}
	mt := ""
	if contentType != "" {
		mt, _, _ = mime.ParseMediaType(contentType)
	}
	if mt == "application/json" || (mt == "" && strings.HasPrefix(trimmed, "{")) {
		return decodeJSON(body)
	}
	v, err := parseForm(make(values, 0, 4), string(body))
	if err != nil {
		return nil, fmt.Errorf("malformed form body: %w", err)
	}
	return v, nil
}

func decodeJSON(body []byte) (values, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("malformed JSON body: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed JSON body: trailing data")
	}
	out := make(values, 0, len(m))
	for k, raw := range m {
		var v any
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("malformed JSON value of %q: %w", k, err)
		}
		switch x := v.(type) {
		case nil:
		case string:
			out = append(out, kv{k, x})
		case json.Number:
			out = append(out, kv{k, x.String()})
		case bool:
			out = append(out, kv{k, strconv.FormatBool(x)})
		default:
			return nil, fmt.Errorf("parameter %q must be a string or a number", k)
		}
	}
	return out, nil
}
